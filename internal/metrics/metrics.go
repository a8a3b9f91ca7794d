// Package metrics holds redraft's Prometheus metrics and serves them, with
// the health checks and Go's profiles, over HTTP (--metrics-addr).
//
// Counters and histograms are updated on the request path with atomic
// operations only (client_golang's Counter.Add and Histogram.Observe take
// no lock); everything that describes state (Raft's role, indexes, sizes,
// clients) is read when Prometheus scrapes, through functions the node
// registers. hashicorp/raft reports its own metrics through go-metrics,
// whose Prometheus sink feeds the same registry (ForwardRaft).
package metrics

import (
	"fmt"
	"time"

	gometrics "github.com/hashicorp/go-metrics"
	gmprom "github.com/hashicorp/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// namespace prefixes every metric of redraft's own.
const namespace = "redraft"

// Kind is how a command was handled.
type Kind int

// The kinds of commands counted by redraft_commands_total.
const (
	Write   Kind = iota // proposed through the Raft log
	Read                // served by the child after the --consistency check
	Local               // answered on this node (redraft itself, or the child without a check)
	Refused             // rejected before running (unknown, arity, refused, OOM)
)

var kindNames = [...]string{"write", "read", "local", "refused"}

// String is the kind's label value.
func (k Kind) String() string { return kindNames[k] }

// Metrics is redraft's own metrics and the registry that serves them.
type Metrics struct {
	Registry *prometheus.Registry

	commands       [len(kindNames)]prometheus.Counter
	proposal       prometheus.Histogram
	entryCommands  prometheus.Histogram
	apply          prometheus.Histogram
	applyEntries   prometheus.Histogram
	snapshots      prometheus.Counter
	snapshotErrors prometheus.Counter
	snapshot       prometheus.Histogram
	restores       prometheus.Counter
	fsync          prometheus.Histogram
	backups        prometheus.Counter
}

// latencyBuckets spans 100 µs to about 13 s.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 2, 18)

// New creates the metrics in a registry of their own, with Go's runtime
// and the process's metrics beside them.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{Registry: reg}
	commands := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "commands_total",
		Help: "Commands received by kind: write (through the Raft log), read (served by the child after the consistency check), local (answered on this node without a check) and refused (rejected before running).",
	}, []string{"kind"})
	for k := range kindNames {
		m.commands[k] = commands.WithLabelValues(kindNames[k])
	}
	m.proposal = histogram("proposal_duration_seconds", "Time from handing a log entry to Raft until it is applied on this node (the leader), as writers wait for it.", latencyBuckets)
	m.entryCommands = histogram("entry_commands", "Client commands per log entry (group commit).", prometheus.ExponentialBuckets(1, 2, 11))
	m.apply = histogram("apply_duration_seconds", "Time to apply one batch of committed entries to the child.", latencyBuckets)
	m.applyEntries = histogram("apply_batch_entries", "Log entries per applied batch.", prometheus.ExponentialBuckets(1, 2, 10))
	m.snapshot = histogram("snapshot_duration_seconds", "Time to write one snapshot (fork, throwaway redis-server, streaming every key).", prometheus.ExponentialBuckets(0.01, 2, 16))
	m.fsync = histogram("log_fsync_duration_seconds", "Time of one fsync of the Raft log (wal backend).", latencyBuckets)
	m.snapshots = counter("snapshots_total", "Snapshots written.")
	m.snapshotErrors = counter("snapshot_errors_total", "Snapshots that failed.")
	m.restores = counter("snapshot_restores_total", "Snapshots installed into the child (at start-up, sent by the leader, or --restore).")
	m.backups = counter("backups_total", "Backups written (redis-cli --rdb, RAFTBACKUP, /backup).")
	reg.MustRegister(commands, m.proposal, m.entryCommands, m.apply, m.applyEntries, m.snapshot, m.fsync,
		m.snapshots, m.snapshotErrors, m.restores, m.backups,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func histogram(name, help string, buckets []float64) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets})
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
}

// Commands counts n commands of kind k.
func (m *Metrics) Commands(k Kind, n int) { m.commands[k].Add(float64(n)) }

// Proposed records one log entry of cmds client commands that took d from
// proposal to being applied.
func (m *Metrics) Proposed(cmds int, d time.Duration) {
	m.entryCommands.Observe(float64(cmds))
	m.proposal.Observe(d.Seconds())
}

// Applied records one batch of entries applied in d.
func (m *Metrics) Applied(entries int, d time.Duration) {
	m.applyEntries.Observe(float64(entries))
	m.apply.Observe(d.Seconds())
}

// Snapshotted records one snapshot written in d, or failed.
func (m *Metrics) Snapshotted(d time.Duration, err error) {
	if err != nil {
		m.snapshotErrors.Inc()
		return
	}
	m.snapshots.Inc()
	m.snapshot.Observe(d.Seconds())
}

// Restored records one snapshot installed.
func (m *Metrics) Restored() { m.restores.Inc() }

// Synced records one fsync of the Raft log that took d.
func (m *Metrics) Synced(d time.Duration) { m.fsync.Observe(d.Seconds()) }

// BackedUp records one backup written.
func (m *Metrics) BackedUp() { m.backups.Inc() }

// Gauge registers redraft_<name>, read from fn at every scrape.
func (m *Metrics) Gauge(name, help string, fn func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, fn))
}

// Counter registers redraft_<name>, a counter read from fn at every scrape.
func (m *Metrics) Counter(name, help string, fn func() float64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, fn))
}

// State registers redraft_<name>{<label>=...}: 1 for the value current
// returns, 0 for the others of values.
func (m *Metrics) State(name, help, label string, values []string, current func() string) {
	m.Registry.MustRegister(&stateCollector{
		desc:    prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, []string{label}, nil),
		values:  values,
		current: current,
	})
}

// stateCollector is a one-hot gauge over a fixed set of label values.
type stateCollector struct {
	desc    *prometheus.Desc
	values  []string
	current func() string
}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	cur := c.current()
	for _, v := range c.values {
		val := 0.0
		if v == cur {
			val = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, val, v)
	}
}

// ForwardRaft routes the metrics hashicorp/raft reports through go-metrics
// (raft_commitTime, raft_fsm_applyBatch, raft_replication_appendEntries_rpc,
// …, under their own names, beside redraft_*) into this registry.
// go-metrics keeps one global sink, which this replaces.
func (m *Metrics) ForwardRaft() error {
	sink, err := gmprom.NewPrometheusSinkFrom(gmprom.PrometheusOpts{Registerer: m.Registry, Name: "redraft_raft_sink"})
	if err != nil {
		return fmt.Errorf("prometheus sink: %w", err)
	}
	conf := gometrics.DefaultConfig("")
	conf.EnableHostname = false
	conf.EnableRuntimeMetrics = false // the Go collector has them
	if _, err := gometrics.NewGlobal(conf, sink); err != nil {
		return fmt.Errorf("go-metrics: %w", err)
	}
	return nil
}
