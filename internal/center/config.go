package center

import (
	"bytes"
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/hazardwatch/hazardwatch/alerting"
)

// AlertingFile is the alerting configuration of a centre: where warnings
// are delivered and who may use the alarm API. An example with every option
// is configs/alerting.yaml.
type AlertingFile struct {
	Receivers []alerting.Receiver `yaml:"receivers"`
	Tokens    []alerting.Token    `yaml:"tokens"`
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
	return f, nil
}
