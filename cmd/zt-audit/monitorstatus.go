package main

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/verifier/audit"
	"github.com/zt-infra/ztlog/verifier/monitor"
)

// monitorStatus is what the monitor's heartbeat, /metrics and /healthz
// report: the last checkpoint checked and the last alert.
type monitorStatus struct {
	interval time.Duration

	mu          sync.Mutex
	origin      string
	size        uint64
	checkedAt   time.Time // last poll that read the log
	polledAt    time.Time
	unreachable bool
	last        *monitor.Alert
	alerts      *prometheus.CounterVec
	failed      int
}

func newMonitorStatus(interval time.Duration) *monitorStatus {
	return &monitorStatus{interval: interval, alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ztlog_monitor_alerts_total", Help: "Alerts raised, by kind and severity."}, []string{"kind", "severity"})}
}

func (s *monitorStatus) alerted(a monitor.Alert) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = &a
	if a.Severity == audit.Fail {
		s.failed++
	}
	s.alerts.WithLabelValues(a.Kind, string(a.Severity)).Inc()
}

func (s *monitorStatus) polled(m *monitor.Monitor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.polledAt, s.unreachable = now, m.Unreachable()
	if cp := m.Checkpoint(); cp != nil {
		s.origin, s.size = cp.Origin, cp.Size
	}
	if !s.unreachable {
		s.checkedAt = now
	}
}

func (s *monitorStatus) failures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// line is the heartbeat text.
func (s *monitorStatus) line() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := fmt.Sprintf("%s size %d, checked %s", s.origin, s.size, s.checkedAt.UTC().Format(time.RFC3339))
	if s.unreachable {
		l += ", the log is UNREACHABLE"
	}
	if s.last != nil {
		l += fmt.Sprintf("; last alert %s %s at %s", s.last.Severity, s.last.Kind, s.last.Time.UTC().Format(time.RFC3339))
	} else {
		l += "; no alert"
	}
	return l
}

// health is /healthz: unhealthy when the log was not read within three
// intervals.
func (s *monitorStatus) health() (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := map[string]any{"origin": s.origin, "checked_size": s.size}
	if !s.checkedAt.IsZero() {
		st["checked_at"] = s.checkedAt.UTC().Format(time.RFC3339Nano)
	}
	if s.last != nil {
		st["last_alert"] = s.last
	}
	switch {
	case s.checkedAt.IsZero():
		return st, errors.New("the log has not been read yet")
	case time.Since(s.checkedAt) > 3*s.interval:
		return st, fmt.Errorf("the log was last read at %s", s.checkedAt.UTC().Format(time.RFC3339))
	}
	return st, nil
}

func (s *monitorStatus) registry() *prometheus.Registry {
	reg := cli.NewRegistry()
	gauge := func(name, help string, v func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			s.mu.Lock()
			defer s.mu.Unlock()
			return v()
		})
	}
	reg.MustRegister(s.alerts,
		gauge("ztlog_monitor_checked_size", "Tree size of the last checkpoint checked.", func() float64 { return float64(s.size) }),
		gauge("ztlog_monitor_last_check_timestamp_seconds", "When the log was last read (Unix time; 0: never).", func() float64 { return unix(s.checkedAt) }),
		gauge("ztlog_monitor_last_alert_timestamp_seconds", "When the last alert was raised (Unix time; 0: none).", func() float64 {
			if s.last == nil {
				return 0
			}
			return unix(s.last.Time)
		}),
		gauge("ztlog_monitor_log_unreachable", "1 if the last poll could not read the log.", func() float64 {
			if s.unreachable {
				return 1
			}
			return 0
		}))
	return reg
}

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}
