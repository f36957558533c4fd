// Package queryapi serves stored readings over HTTP: a small JSON API for
// the officers' console (the latest reading of every point with its limits
// from the site file, and one point's history), and the Prometheus HTTP
// query API over the embedded store so Grafana can use HazardWatch as a
// Prometheus data source. It only reads; docs/query-api.md describes every
// endpoint.
package queryapi
