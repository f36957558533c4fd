// Package site loads and validates site files: the one description of a
// site's gateways, Modbus devices, major hazard sources and monitoring points
// that the gateway, the ingest service and the rules all read.
//
// Parsing is strict. Every problem in a file (an unknown key, a duplicate id,
// limits out of order or outside the measuring range, a point on an unknown
// device …) is reported with its file, line and field, all of them at once,
// so a site engineer can fix a file in one pass.
package site
