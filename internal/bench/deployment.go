package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"

	"github.com/deconflict/deconflict/internal/api"
	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/server"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// deployment is in-process servers on the stores of one deployment (its
// replicas), and the parties coalition and russia as clients of each.
type deployment struct {
	bases []string
	// parties holds, by party, one client per replica (in the order of
	// bases).
	parties map[string][]*client.Client
	// services are the servers' services, in the order of bases.
	services []*service.Service
	wait     func() error
}

// resolutionWork is what the services of a deployment counted of the
// resolutions of alert transitions (service.Metrics).
type resolutionWork struct {
	computed, skipped, late float64
	cpuS                    float64
}

// resolutionWork sums the services' counts so far.
func (d *deployment) resolutionWork() resolutionWork {
	var w resolutionWork
	value := func(c prometheus.Counter) float64 {
		var m dto.Metric
		if c.Write(&m) != nil {
			return 0
		}
		return m.GetCounter().GetValue()
	}
	for _, svc := range d.services {
		m := svc.Metrics()
		w.computed += value(m.Resolutions.WithLabelValues("computed"))
		w.skipped += value(m.Resolutions.WithLabelValues("skipped"))
		w.late += value(m.ResolutionsLate)
		w.cpuS += value(m.ResolutionCPUSeconds)
	}
	return w
}

// add is the sum of both.
func (w resolutionWork) add(o resolutionWork) resolutionWork {
	return resolutionWork{computed: w.computed + o.computed, skipped: w.skipped + o.skipped, late: w.late + o.late, cpuS: w.cpuS + o.cpuS}
}

// sub is the work done since was.
func (w resolutionWork) sub(was resolutionWork) resolutionWork {
	return resolutionWork{computed: w.computed - was.computed, skipped: w.skipped - was.skipped, late: w.late - was.late, cpuS: w.cpuS - was.cpuS}
}

// replica is party's client of replica i (modulo their number).
func (d *deployment) replica(party string, i int) *client.Client {
	cs := d.parties[party]
	return cs[i%len(cs)]
}

// deploymentOptions vary a deployment from the service's defaults.
type deploymentOptions struct {
	// withoutNeedToKnow runs the servers without need to know (the
	// baseline of its cost).
	withoutNeedToKnow bool
	// withoutResolution leaves resolutions out of alert events (the
	// baseline of their cost).
	withoutResolution bool
	// parties are created besides coalition and russia.
	parties []string
	// resolutionWorkPerSecond is each party's budget of resolutions on
	// demand (api.Options.ResolutionWorkPerSecond; 0: the server's
	// default).
	resolutionWorkPerSecond float64
}

// startDeployment runs one in-process server per store until ctx ends: the
// replicas of one deployment, sharing dataDir (the audit signing key). The
// parties coalition and russia (and o.parties) are created through the
// first. d.wait waits for the servers to stop and returns their errors;
// call it after ending ctx, also when startDeployment fails.
func startDeployment(ctx context.Context, stores []store.Store, dataDir string, o deploymentOptions) (*deployment, error) {
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	d := &deployment{parties: map[string][]*client.Client{}}
	d.wait = func() error {
		wg.Wait()
		return errors.Join(errs...)
	}
	tokens := map[string]string{}
	// One HTTP client for all the parties' clients: it keeps enough idle
	// connections for the concurrent ingest clients, so that connection
	// set-up is not measured.
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for i, st := range stores {
		ready := make(chan error, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = server.Run(ctx, server.Config{
				Store: st, DataDir: dataDir, Listen: "127.0.0.1:0",
				// The measurement is of the service, not the rate limiter.
				// The budget of resolutions on demand is the server's
				// default unless set: it bounds the work of the on-demand
				// client (bench --resolution), which reports what it
				// refused.
				API: api.Options{RatePerSecond: 1e6, ReportsPerSecond: 1e9, PreviewItemsPerSecond: 1e9, VolumePositionsPerSecond: 1e9,
					ResolutionWorkPerSecond: o.resolutionWorkPerSecond},
				WithoutNeedToKnow: o.withoutNeedToKnow,
				WithoutResolution: o.withoutResolution,
				// Nor of the bound on a party's aircraft: a fleet of
				// --aircraft on two parties may pass it.
				MaxAircraftPerParty: 1 << 30,
				Ready: func(base string, svc *service.Service) {
					var err error
					if i == 0 {
						// Nor of the fleets the rules agree (the lower
						// of theirs and the server's holds): proposed
						// before there is a party to ask, they are in
						// force at once.
						err = agreeLargestFleets(svc)
						for _, party := range append([]string{"coalition", "russia"}, o.parties...) {
							tok, e := svc.CreateParty(context.Background(), party)
							err = errors.Join(err, e)
							tokens[party] = tok
						}
					}
					d.bases = append(d.bases, base)
					d.services = append(d.services, svc)
					ready <- err
				},
			})
			if errs[i] != nil {
				ready <- fmt.Errorf("server: %w", errs[i])
			}
		}()
		if err := <-ready; err != nil {
			return d, err
		}
	}
	for party, tok := range tokens {
		for _, base := range d.bases {
			d.parties[party] = append(d.parties[party], client.New(base, tok).WithHTTPClient(hc))
		}
	}
	return d, nil
}

// tempSQLite opens a store in a new temporary data directory; done closes
// it and removes the directory.
func tempSQLite(prefix string) (dir string, st *sqlite.Store, done func(), err error) {
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, nil, err
	}
	st, err = sqlite.Open(context.Background(), dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, nil, err
	}
	return dir, st, func() {
		st.Close()
		os.RemoveAll(dir)
	}, nil
}

// agreeLargestFleets puts in force rules that let each party fly the
// largest fleet the rules can agree (rules.MaxAircraftBound), so that a
// bench of --aircraft over few parties measures the service, not the
// bound. Called before any party exists, the proposal needs no answer.
func agreeLargestFleets(svc *service.Service) error {
	r, _ := svc.AgreedRules()
	r.MaxAircraft = rules.MaxAircraftBound
	p, err := svc.ProposeRules(context.Background(), party.Principal{Party: party.OperatorName, Operator: true}, r)
	if err == nil && p.State != rules.ProposalActive {
		err = fmt.Errorf("bench: the rules of the largest fleets are %s, not in force", p.State)
	}
	return err
}
