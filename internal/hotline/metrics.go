package hotline

import "github.com/prometheus/client_golang/prometheus"

// NewEscalationsCounter returns the counter of escalations for a service to
// register in its registry. Add len(escalated) to it after the
// transaction of Escalate has committed, never inside it.
func NewEscalationsCounter() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{
		Name: "deconflict_hotline_escalations_total",
		Help: "Hotline items escalated because a recipient did not acknowledge before the deadline.",
	})
}
