package metrics_test

import (
	"log"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/metrics"
)

// Mount a view of /srv/data on /mnt/view and serve its metrics at
// http://127.0.0.1:9475/metrics while it is mounted.
func ExampleNewCollector() {
	m, err := sievefs.MountView("/srv/data", "/mnt/view", sievefs.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Unmount()
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(m))
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	go func() { log.Fatal(http.ListenAndServe("127.0.0.1:9475", nil)) }()
	m.Wait()
}
