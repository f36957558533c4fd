// Package scenarios holds the built-in simulator scenarios as the YAML
// files a site engineer copies to script an incident for any site (see
// docs/gateway.md, "Scenario files"); package simulators reads them.
package scenarios

import "embed"

// FS holds every *.yaml file of this directory.
//
//go:embed *.yaml
var FS embed.FS
