// Package replica owns what several `deconflict serve` replicas on one
// PostgreSQL share besides the store itself: the relay that hands the
// position reports accepted by one replica to the tactical engines of the
// others, the prompt wake-up of every replica when another one commits
// events, and the detection lease that decides which single replica commits
// alert transitions (and signs the transparency log's checkpoints).
//
// Why LISTEN/NOTIFY (github.com/jackc/pgxlisten) rather than a table tailed
// by id or NATS: the replicas already share PostgreSQL, so nothing else has
// to be run; a notification reaches every listener as soon as the
// transaction that sent it commits (a report to one replica reaches the
// SSE clients of the other as an alert in about 4 ms at the median, see
// BENCHMARKS.md), where tailing a table costs a query per replica per poll
// and adds half the poll period to every delivery. Notifications are not durable, and that
// fits both uses: position reports are perishable (the next report of the
// aircraft replaces them, and a replica that missed some while reconnecting
// has the next ones a few seconds later), and events are durable in the
// store anyway: a notification only says "read the store now", every
// replica also reads it at each housekeeping tick, and a client resumes from
// the store by Last-Event-ID. CockroachDB has no LISTEN/NOTIFY: there the
// replicas would share events through the tick alone (1 s) and need another
// relay for positions.
//
// The embedded SQLite store is one process: nothing of this package runs
// there, and the service commits its transitions without a lease.
package replica
