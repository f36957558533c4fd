package center

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hazardwatch/hazardwatch/alerting"
	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/protocol"
)

// AlertingFile is the alerting configuration of a centre: where warnings
// are delivered, who may use the centre (accounts, API tokens, sessions)
// and the limits of officers' actions. An example with every option is
// configs/alerting.yaml.
type AlertingFile struct {
	Receivers  []alerting.Receiver `yaml:"receivers"`
	Escalation Escalation          `yaml:"escalation"`
	Flood      Flood               `yaml:"flood"`
	Incidents  Incidents           `yaml:"incidents"`
	// Accounts, Tokens and Session (package access).
	Access access.Config `yaml:",inline"`
	// MaxShelve is the longest an officer may shelve an alarm (default
	// 8h).
	MaxShelve time.Duration `yaml:"max_shelve"`
}

// Incidents: one per hazard source while it is out of normal. Zero
// values take the defaults: a yellow or blue incident closes by itself
// 30 min after it returned to normal; orange and red need a disposal.
type Incidents struct {
	// AutoCloseAfter: how long a yellow or blue incident stays normal
	// before it closes by itself; negative (or auto_close: false)
	// never.
	AutoCloseAfter time.Duration `yaml:"auto_close_after"`
	// AutoCloseMaxGrade: the worst grade that may close by itself
	// (blue or yellow; default yellow).
	AutoCloseMaxGrade protocol.Grade `yaml:"auto_close_max_grade"`
	// NoAutoClose: every incident needs a disposal record.
	NoAutoClose bool `yaml:"no_auto_close"`
}

func (i Incidents) validate() error {
	if i.AutoCloseMaxGrade > protocol.Yellow {
		return fmt.Errorf("incidents.auto_close_max_grade %s: orange and red incidents need a disposal record; blue or yellow", i.AutoCloseMaxGrade)
	}
	if i.AutoCloseAfter < 0 {
		return fmt.Errorf("incidents.auto_close_after %s is negative (use no_auto_close: true)", i.AutoCloseAfter)
	}
	return nil
}

func (i Incidents) apply(c *alerting.Config) {
	c.AutoCloseAfter, c.AutoCloseMaxGrade = i.AutoCloseAfter, i.AutoCloseMaxGrade
	if i.NoAutoClose {
		c.AutoCloseAfter = -1
	}
}

// Escalation of unacknowledged warnings; zero values take the alerting
// defaults (orange and above, re-sent every 5 min, to the escalation
// receivers after 15 min).
type Escalation struct {
	Disabled       bool           `yaml:"disabled"`
	MinGrade       protocol.Grade `yaml:"min_grade"`
	ResendInterval time.Duration  `yaml:"resend_interval"`
	EscalateAfter  time.Duration  `yaml:"escalate_after"`
}

// Flood control per hazard source; zero values take the ISA-18.2 defaults
// (more than 10 alarms in 10 min, summarised once a minute).
type Flood struct {
	Disabled        bool          `yaml:"disabled"`
	Threshold       int           `yaml:"threshold"`
	Window          time.Duration `yaml:"window"`
	SummaryInterval time.Duration `yaml:"summary_interval"`
}

func (e Escalation) validate() error {
	var errs []error
	if e.ResendInterval < 0 {
		errs = append(errs, fmt.Errorf("escalation.resend_interval %s is negative (use disabled: true)", e.ResendInterval))
	}
	if e.EscalateAfter < 0 {
		errs = append(errs, fmt.Errorf("escalation.escalate_after %s is negative", e.EscalateAfter))
	}
	return errors.Join(errs...)
}

func (f Flood) validate() error {
	var errs []error
	if f.Threshold < 0 {
		errs = append(errs, fmt.Errorf("flood.threshold %d is negative (use disabled: true)", f.Threshold))
	}
	if f.Window < 0 {
		errs = append(errs, fmt.Errorf("flood.window %s is negative", f.Window))
	}
	if f.SummaryInterval < 0 {
		errs = append(errs, fmt.Errorf("flood.summary_interval %s is negative", f.SummaryInterval))
	}
	return errors.Join(errs...)
}

// apply sets the escalation and flood settings of an alerting config.
func (e Escalation) apply(c *alerting.Config) {
	c.EscalationMinGrade, c.ResendInterval, c.EscalateAfter = e.MinGrade, e.ResendInterval, e.EscalateAfter
	if e.Disabled {
		c.ResendInterval = -1
	}
}

func (f Flood) apply(c *alerting.Config) {
	c.FloodThreshold, c.FloodWindow, c.FloodSummaryInterval = f.Threshold, f.Window, f.SummaryInterval
	if f.Disabled {
		c.FloodThreshold = -1
	}
}

// LoadAlertingFile reads an alerting configuration strictly: an unknown key
// is an error naming its line.
func LoadAlertingFile(path string) (AlertingFile, error) {
	var f AlertingFile
	data, err := os.ReadFile(path)
	if err != nil {
		return f, fmt.Errorf("alerting config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return f, fmt.Errorf("alerting config %s: %w", path, err)
	}
	var shelve error
	if f.MaxShelve < 0 {
		shelve = fmt.Errorf("max_shelve %s is negative", f.MaxShelve)
	}
	if err := errors.Join(f.Escalation.validate(), f.Flood.validate(), f.Incidents.validate(), shelve, f.Access.Validate()); err != nil {
		return f, fmt.Errorf("alerting config %s: %w", path, err)
	}
	return f, nil
}
