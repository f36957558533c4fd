// Package gateway is HazardWatch's edge gateway: it polls one gateway's
// Modbus devices as the site file maps them and publishes their readings as
// protocol v1 telemetry over MQTT.
//
// Devices are grouped into lines: the units of one serial port (RTU), or
// of one serial device server (RTU over TCP), share a line; every Modbus
// TCP device is a line of its own. One goroutine per line polls its units
// at their poll_interval, one request at a time (line.go): each unit has
// its own timeout, retries and backoff, and an absent unit is probed once
// per backoff period, only when its timeout fits before the next healthy
// unit is due, so it never pushes a healthy unit out of its interval.
// pause_between_requests and pause_after_open give slow converters and
// devices their turnaround time. The Modbus master is
// github.com/simonvetter/modbus (TCP, RTU, RTU over TCP).
//
// Points are coalesced into as few reads as Modbus allows (Plan). A read
// the device refuses with exception 2 or 3 (a hole in its register map)
// is halved down to single points; the holes are remembered and the reads
// planned around them, so only the points the device truly lacks are
// comm_fail, with the reason; the holes are probed again every
// ReprobeInterval (holes.go). A device that does not answer at all has its
// points reported as comm_fail, never as a value. Values are decoded by
// gateway/codec (types, byte orders, scale, 4–20 mA with NAMUR NE 43).
//
// Readings are batched for BatchDelay into telemetry messages whose seq
// starts at 1 and rises by one per message across restarts: it is the
// message's id in the store-and-forward spool, so a message the gateway
// built never leaves a gap before it.
//
// Report by exception (a point's `report:` in the site file, off by
// default): such a point is sent only when its value moved by its deadband
// since it was last sent, its quality changed, or its heartbeat passed.
//
// Store and forward: every message is written durably (fsync) to an
// on-disk spool ({data}/spool, package internal/queue) before it is
// published, and leaves it only once the centre confirmed it durably
// stored: the centre's retained ack on hazardwatch/v1/{site}/{gateway}/ack
// (ack.go; PubackOnly: once the broker acknowledged it). What stays
// unconfirmed for AckTimeout is sent again (package gateway/forward). The
// ack's clock gives the gateway's clock offset (metric, Status). A broker outage of hours, a kill -9 or a power cut
// loses nothing; when the link is back, live data goes first and the
// backlog is replayed oldest first at ReplayRate beside it, each message
// with its original seq. The spool is bounded (SpoolMaxBytes); when full,
// the oldest messages are dropped, counted and logged. Messages go out
// through the Publisher interface; the MQTT implementation uses QoS 1, a
// persistent session under a stable client id and a retained
// online/offline state with an offline will.
//
// A site engineer commissioning a gateway runs PollOnce (the command's
// -dry-run) to see every point's registers, value and quality.
//
// # Command and options
//
// hazardwatch-gateway flags, with their defaults:
//
//	-site FILE             site file (required)
//	-gateway ID            gateway id in the site; default: the site's only gateway
//	-broker URL            tcp://127.0.0.1:1883 (ssl://host:8883 for TLS)
//	-client-id ID          hazardwatch-gw-{site}-{gateway}
//	-username NAME         none
//	-password-file FILE    none; the file holds the MQTT password
//	-ca FILE               none; CA (PEM) that verifies the broker
//	-cert FILE, -key FILE  none; client certificate and key (PEM)
//	-data DIR              data/gateway (holds the spool, and so the seq)
//	-spool-max-bytes N     536870912 (512 MiB); the spool's bound on disk
//	-replay-rate N         50; backlog messages per second after an outage
//	-metrics ADDR          :9101, serving /metrics, /status and /healthz; empty: off
//	-ack-timeout D         30s; unconfirmed messages are sent again after it
//	-puback-only           false; forget messages at PUBACK (centre without acks)
//	-reprobe D             10m; refused addresses are probed again after it
//	-dry-run               false; read every device once, print the report, exit 1 if a point was not read
//	-version               print the build and exit
//	-debug                 false; log at debug level
//
// Library use, with Config defaults:
//
//	g, err := gateway.New(gateway.Config{
//		Site:      s,                 // from site.Load
//		GatewayID: "gw-tank",
//		DataDir:   "data/gateway",
//		MQTT: gateway.MQTTConfig{
//			Broker: "tcp://127.0.0.1:1883", // default
//			// ClientID: hazardwatch-gw-{site}-{gateway}; Username, Password;
//			// CAFile, CertFile, KeyFile for TLS;
//			// KeepAlive 30s, ConnectTimeout 10s, MaxReconnectInterval 30s.
//		},
//		// Publisher:      nil → MQTT as above; set one to replace it.
//		// Registry:       nil → metrics not registered.
//		// Logger:         nil → no logs.
//		// BatchDelay:     50ms, MaxBatch: 1000 readings,
//		// MaxBackoff:     30s,  PublishTimeout: 10s,
//		// SpoolMaxBytes:  512 MiB, ReplayRate: 50/s, DrainTimeout: 3s,
//		// AckTimeout:     30s, PubackOnly: false, ReprobeInterval: 10m.
//	})
//	err = g.Run(ctx) // until ctx is cancelled
//
// Per-device settings come from the site file: transport (tcp, rtu,
// rtu_over_tcp), poll_interval (1s), timeout (1s), retries (1), max_gap (8),
// unit_id (1), pause_between_requests and pause_after_open (0), and for RTU
// the serial port, baud_rate (9600), data_bits (8), parity (N), stop_bits
// (1).
//
// # Metrics
//
//	hazardwatch_gateway_polls_total{device,result}        result: ok, partial, failed
//	hazardwatch_gateway_poll_errors_total{device,code}    code: timeout, refused, bad_crc, io, exception_N
//	hazardwatch_gateway_request_seconds{device}           Modbus request latency
//	hazardwatch_gateway_messages_spooled_total            written durably to the spool
//	hazardwatch_gateway_readings_dropped_total            could not reach the spool (disk failure)
//	hazardwatch_gateway_spool_records, _spool_bytes       spool depth
//	hazardwatch_gateway_spool_oldest_age_seconds          age of the oldest unsent message
//	hazardwatch_gateway_spool_dropped_total               dropped because the spool was full
//	hazardwatch_gateway_forward_published_total           acknowledged by the broker
//	hazardwatch_gateway_forward_replayed_total            of those, backlog replays
//	hazardwatch_gateway_forward_publish_errors_total      failed attempts (retried)
//	hazardwatch_gateway_seq                               last seq built
//	hazardwatch_gateway_confirmed_seq                     last seq the centre confirmed
//	hazardwatch_gateway_forward_resent_total              times unconfirmed messages were sent again
//	hazardwatch_gateway_forward_confirmed_id              the same confirmation, as the forwarder applied it
//	hazardwatch_gateway_clock_offset_seconds              gateway clock minus the centre's
//	hazardwatch_gateway_refused_points{device}            points whose registers the device refuses
package gateway
