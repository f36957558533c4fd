// Package simulators serves a site's Modbus devices from memory, over TCP
// and over RTU serial lines, so that gateways can be commissioned,
// demonstrated and tested without plant.
//
// A Sim holds every point's current engineering value (a calm baseline with
// a little noise), encodes it into registers with gateway/codec exactly as
// the site file maps it, and answers Modbus TCP reads with
// github.com/simonvetter/modbus; RTU devices are answered on a serial line
// (a real port or one end of a pseudo-terminal pair, see ServeRTU and
// OpenPTY) from the same register memory. Tests and demos change the plant
// through Set, Fault, Silence, CorruptCRC and scripted Scenarios.
package simulators

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/hazardwatch/hazardwatch/gateway/codec"
	"github.com/hazardwatch/hazardwatch/site"
)

// Fault is a sensor failure a point can be given.
type Fault int

// Faults.
const (
	// NoFault: the sensor reports its value.
	NoFault Fault = iota
	// BrokenLoop: a 4–20 mA loop reads 3.0 mA (open wire), which a gateway
	// decodes as quality bad. For a point without current_loop the device
	// flags the detector as failed instead (see DetectorFault).
	BrokenLoop
	// DetectorFault: the detector reports failure. A float point then holds
	// NaN, a current-loop point 3.0 mA — both decode as quality bad; an
	// integer point holds the type's largest raw number, the "sensor
	// error" code of many gas controllers, which decodes as over_range.
	DetectorFault
)

// Option changes how a Sim is built.
type Option func(*Sim)

// WithAddress serves a device on addr (host:port) instead of the address in
// the site file; tests pass "127.0.0.1:0" to get a free port.
func WithAddress(deviceID, addr string) Option {
	return func(s *Sim) { s.addrOverride[deviceID] = addr }
}

// WithHoles makes every device answer exception 2 (illegal data address)
// to a read that takes in any address its site file does not map (and no
// SetRaw wrote), as many PLCs and gas controllers do for the unused
// addresses of their register maps. Without it a read is answered when it
// touches at least one mapped address.
func WithHoles() Option { return func(s *Sim) { s.holes = true } }

// WithoutNoise keeps every value exactly where it was set.
func WithoutNoise() Option { return func(s *Sim) { s.noise = false } }

// WithSeed makes the noise reproducible.
func WithSeed(seed uint64) Option {
	return func(s *Sim) { s.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

// WithTick sets how often noise and scenario ramps update values; default
// 200ms.
func WithTick(d time.Duration) Option { return func(s *Sim) { s.tick = d } }

// WithLogger receives the Modbus server's own log lines; default discarded.
func WithLogger(l *log.Logger) Option { return func(s *Sim) { s.logger = l } }

// Sim serves the TCP devices of one site.
type Sim struct {
	site         *site.Site
	addrOverride map[string]string
	noise        bool
	holes        bool
	tick         time.Duration
	logger       *log.Logger

	mu      sync.Mutex
	rng     *rand.Rand
	points  map[string]*simPoint
	devices map[string]*simDevice
	servers []*server
	buses   []*rtuServer
	ramps   []ramp
	started time.Time

	stop chan struct{}
	wg   sync.WaitGroup
}

type simPoint struct {
	ref      *site.PointRef
	target   float64 // where the value sits before noise
	value    float64 // what the device reports now
	noiseAmp float64
	fault    Fault
}

type simDevice struct {
	dev     *site.Device
	silent  bool
	release chan struct{} // closed when the device answers again
	regs    map[site.Table]map[uint16]uint16

	// corruptCRC makes the device's RTU answers carry a wrong checksum.
	corruptCRC bool
}

type ramp struct {
	point      string
	from, to   float64
	start, end time.Time
}

// New builds a simulator for the devices of s. Call Start to listen for the
// TCP devices and ServeRTU to answer the RTU devices of a serial bus.
func New(s *site.Site, opts ...Option) (*Sim, error) {
	if s == nil {
		return nil, errors.New("simulator: no site")
	}
	sim := &Sim{
		site:         s,
		addrOverride: map[string]string{},
		noise:        true,
		tick:         200 * time.Millisecond,
		logger:       log.New(io.Discard, "", 0),
		rng:          rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1)),
		points:       map[string]*simPoint{},
		devices:      map[string]*simDevice{},
		stop:         make(chan struct{}),
	}
	for _, o := range opts {
		o(sim)
	}
	for id := range sim.addrOverride {
		if s.Device(id) == nil {
			return nil, fmt.Errorf("simulator for site %s: option names unknown device %q", s.ID, id)
		}
	}
	for gi := range s.Gateways {
		for di := range s.Gateways[gi].Devices {
			d := &s.Gateways[gi].Devices[di]
			if d.Transport != site.TransportTCP && d.Transport != "" && d.Transport != site.TransportRTU {
				continue
			}
			sd := &simDevice{dev: d, regs: map[site.Table]map[uint16]uint16{}}
			for _, t := range []site.Table{site.Coils, site.DiscreteInputs, site.HoldingRegisters, site.InputRegisters} {
				sd.regs[t] = map[uint16]uint16{}
			}
			sim.devices[d.ID] = sd
			for _, ref := range s.PointsOfDevice(d.ID) {
				base := Baseline(ref.Point)
				sim.points[ref.Point.ID] = &simPoint{ref: ref, target: base, value: base, noiseAmp: noiseAmplitude(ref.Point)}
			}
		}
	}
	sim.mu.Lock()
	defer sim.mu.Unlock()
	for id, p := range sim.points {
		if err := sim.writeLocked(id); err != nil {
			// The calm value may not fit the mapping (an offset past it):
			// the middle of the range then stands for calm.
			p.target = p.ref.Point.Range.Min + p.ref.Point.Range.Span()/2
			p.value = p.target
			if err2 := sim.writeLocked(id); err2 != nil {
				return nil, err
			}
		}
	}
	return sim, nil
}

// Start listens on every device's address and begins updating values.
// Devices that share an address are served by one server, by unit id.
func (s *Sim) Start() error {
	byAddr := map[string][]*simDevice{}
	var addrs []string
	for _, d := range s.devices {
		if d.dev.Transport == site.TransportRTU {
			continue // served by ServeRTU
		}
		a := d.dev.Address
		if o, ok := s.addrOverride[d.dev.ID]; ok {
			a = o
		}
		if _, seen := byAddr[a]; !seen || strings.HasSuffix(a, ":0") {
			addrs = append(addrs, a)
		}
		byAddr[a] = append(byAddr[a], d)
	}
	sort.Strings(addrs)
	for _, a := range addrs {
		devs := byAddr[a]
		if strings.HasSuffix(a, ":0") {
			// Each device asked for its own free port.
			for _, d := range devs {
				if err := s.listen(a, []*simDevice{d}); err != nil {
					s.Close()
					return err
				}
			}
			byAddr[a] = nil
			continue
		}
		if err := s.listen(a, devs); err != nil {
			s.Close()
			return err
		}
	}
	s.mu.Lock()
	s.started = time.Now()
	s.mu.Unlock()
	s.wg.Add(1)
	go s.run()
	return nil
}

func (s *Sim) listen(addr string, devs []*simDevice) error {
	if len(devs) == 0 {
		return nil
	}
	// Take the port ourselves so ":0" yields a known free port.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("simulator: listen for device %s on %s: %w", devs[0].dev.ID, addr, err)
	}
	real := ln.Addr().String()
	ln.Close()
	h := &server{sim: s, devices: map[uint8]*simDevice{}}
	for _, d := range devs {
		h.devices[d.dev.UnitID] = d
	}
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp://" + real, Timeout: 5 * time.Minute, MaxClients: 16, Logger: s.logger}, h)
	if err != nil {
		return fmt.Errorf("simulator: server for %s: %w", real, err)
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("simulator: serve device %s on %s: %w", devs[0].dev.ID, real, err)
	}
	h.srv, h.addr = srv, real
	s.mu.Lock()
	s.servers = append(s.servers, h)
	s.mu.Unlock()
	return nil
}

// Addr is where a device is served, once started ("" if not served).
func (s *Sim) Addr(deviceID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.servers {
		for _, d := range h.devices {
			if d.dev.ID == deviceID {
				return h.addr
			}
		}
	}
	return ""
}

// Close stops every server and the value updates. Devices told to stay
// silent are released first so no request handler is left hanging.
func (s *Sim) Close() error {
	s.mu.Lock()
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	for _, d := range s.devices {
		if d.silent {
			d.silent = false
			close(d.release)
		}
	}
	servers := s.servers
	s.servers = nil
	buses := s.buses
	s.buses = nil
	s.mu.Unlock()
	for _, b := range buses {
		b.stop()
	}
	s.wg.Wait()
	var errs []error
	for _, h := range servers {
		if err := h.srv.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("simulator: stop %s: %w", h.addr, err))
		}
	}
	return errors.Join(errs...)
}

// Set moves a point to an engineering value at once (noise still applies
// around it) and cancels any ramp of the point.
func (s *Sim) Set(pointID string, value float64) error {
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return fmt.Errorf("simulator: set %s: value is not a finite number", pointID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.points[pointID]
	if !ok {
		return fmt.Errorf("simulator: set: unknown point %q (or its device is not a TCP device)", pointID)
	}
	s.cancelRampsLocked(pointID)
	p.target, p.value = value, value
	return s.writeLocked(pointID)
}

// Value is the engineering value a point's device reports now.
func (s *Sim) Value(pointID string) (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.points[pointID]
	if !ok {
		return 0, false
	}
	return p.value, true
}

// SetFault makes a point's sensor faulty (or healthy again with NoFault).
func (s *Sim) SetFault(pointID string, f Fault) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.points[pointID]
	if !ok {
		return fmt.Errorf("simulator: fault: unknown point %q", pointID)
	}
	p.fault = f
	return s.writeLocked(pointID)
}

// Silence makes a whole device stop answering (requests hang until the
// gateway times out), or answer again with on false.
func (s *Sim) Silence(deviceID string, on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[deviceID]
	if !ok {
		return fmt.Errorf("simulator: silence: unknown device %q", deviceID)
	}
	switch {
	case on && !d.silent:
		d.silent, d.release = true, make(chan struct{})
	case !on && d.silent:
		d.silent = false
		close(d.release)
	}
	return nil
}

// SetRaw writes raw registers (or a 0/1 bit) at a device's table address,
// for tests of odd data the mapping would not produce.
func (s *Sim) SetRaw(deviceID string, table site.Table, addr uint16, regs ...uint16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[deviceID]
	if !ok {
		return fmt.Errorf("simulator: set raw: unknown device %q", deviceID)
	}
	tab, ok := d.regs[table]
	if !ok {
		return fmt.Errorf("simulator: set raw on %s: unknown table %q", deviceID, table)
	}
	for i, r := range regs {
		tab[addr+uint16(i)] = r
	}
	return nil
}

// writeLocked encodes a point's current value (or fault) into its
// device's registers.
func (s *Sim) writeLocked(pointID string) error {
	p := s.points[pointID]
	m := p.ref.Point.Modbus
	d := s.devices[m.Device]
	tab := d.regs[m.Table]
	n := codec.Registers(m)
	regs := make([]uint16, n)
	for i := range regs {
		regs[i] = tab[m.Address+uint16(i)]
	}
	rng := p.ref.Point.Range
	var err error
	switch {
	case p.fault != NoFault && m.CurrentLoop != nil:
		err = codec.EncodeCurrent(m, 3.0, regs)
	case p.fault != NoFault && (m.Type == site.Float32 || m.Type == site.Float64) && m.Bit == nil && !m.Table.IsBit():
		err = codec.EncodeRaw(m, math.NaN(), regs)
	case p.fault != NoFault:
		err = codec.EncodeRaw(m, maxRaw(m.Type), regs)
	default:
		v := p.value
		if m.CurrentLoop != nil {
			v = math.Min(math.Max(v, rng.Min), rng.Max) // a transmitter saturates
		}
		err = codec.Encode(m, rng, v, regs)
	}
	if err != nil {
		return fmt.Errorf("simulator: point %s: %w", pointID, err)
	}
	for i, r := range regs {
		tab[m.Address+uint16(i)] = r
	}
	return nil
}

func maxRaw(t site.DataType) float64 {
	switch t {
	case site.Int16:
		return math.MaxInt16
	case site.Int32:
		return math.MaxInt32
	case site.Uint32:
		return math.MaxUint32
	case site.Int64, site.Uint64:
		return 1 << 53
	case site.Bool:
		return 1
	}
	return math.MaxUint16
}

// run updates noise and ramps every tick until Close.
func (s *Sim) run() {
	defer s.wg.Done()
	t := time.NewTicker(s.tick)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.step(now)
		}
	}
}

func (s *Sim) step(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	active := map[string]bool{}
	kept := s.ramps[:0]
	for _, r := range s.ramps {
		if now.Before(r.start) {
			kept = append(kept, r)
			continue
		}
		p := s.points[r.point]
		frac := 1.0
		if r.end.After(r.start) {
			frac = math.Min(1, float64(now.Sub(r.start))/float64(r.end.Sub(r.start)))
		}
		if math.IsNaN(r.from) {
			r.from = p.target // a ramp starts from wherever the point is
		}
		p.target = r.from + (r.to-r.from)*frac
		active[r.point] = true
		if frac < 1 {
			kept = append(kept, r)
		}
	}
	s.ramps = kept
	for id, p := range s.points {
		v := p.target
		if s.noise && p.noiseAmp > 0 {
			v += (s.rng.Float64()*2 - 1) * p.noiseAmp
			// Noise never pushes a calm value out of its measuring range.
			v = math.Min(math.Max(v, p.ref.Point.Range.Min), p.ref.Point.Range.Max)
		}
		if v == p.value && !active[id] {
			continue
		}
		p.value = v
		if err := s.writeLocked(id); err != nil {
			s.logger.Printf("%v", err)
		}
	}
}

func (s *Sim) cancelRampsLocked(pointID string) {
	kept := s.ramps[:0]
	for _, r := range s.ramps {
		if r.point != pointID {
			kept = append(kept, r)
		}
	}
	s.ramps = kept
}

// server answers Modbus requests for the devices on one address.
type server struct {
	sim     *Sim
	srv     *modbus.ModbusServer
	addr    string
	devices map[uint8]*simDevice
}

// device finds the addressed device and waits while it is silent.
func (h *server) device(unit uint8) (*simDevice, error) {
	d, ok := h.devices[unit]
	if !ok {
		return nil, modbus.ErrGWTargetFailedToRespond
	}
	h.sim.mu.Lock()
	silent, release := d.silent, d.release
	h.sim.mu.Unlock()
	if silent {
		select {
		case <-release:
		case <-h.sim.stop:
		}
		return nil, modbus.ErrServerDeviceBusy
	}
	return d, nil
}

func (h *server) readRegs(unit uint8, table site.Table, addr, qty uint16) ([]uint16, error) {
	d, err := h.device(unit)
	if err != nil {
		return nil, err
	}
	h.sim.mu.Lock()
	defer h.sim.mu.Unlock()
	if h.sim.holes && !d.hasAll(table, addr, qty) {
		return nil, modbus.ErrIllegalDataAddress
	}
	tab := d.regs[table]
	out := make([]uint16, qty)
	for i := range out {
		out[i] = tab[addr+uint16(i)]
	}
	return out, nil
}

func (h *server) HandleCoils(req *modbus.CoilsRequest) ([]bool, error) {
	if req.IsWrite {
		d, err := h.device(req.UnitId)
		if err != nil {
			return nil, err
		}
		h.sim.mu.Lock()
		defer h.sim.mu.Unlock()
		for i, v := range req.Args {
			var r uint16
			if v {
				r = 1
			}
			d.regs[site.Coils][req.Addr+uint16(i)] = r
		}
		return nil, nil
	}
	return h.bits(req.UnitId, site.Coils, req.Addr, req.Quantity)
}

func (h *server) HandleDiscreteInputs(req *modbus.DiscreteInputsRequest) ([]bool, error) {
	return h.bits(req.UnitId, site.DiscreteInputs, req.Addr, req.Quantity)
}

func (h *server) bits(unit uint8, table site.Table, addr, qty uint16) ([]bool, error) {
	regs, err := h.readRegs(unit, table, addr, qty)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(regs))
	for i, r := range regs {
		out[i] = r != 0
	}
	return out, nil
}

func (h *server) HandleHoldingRegisters(req *modbus.HoldingRegistersRequest) ([]uint16, error) {
	if req.IsWrite {
		d, err := h.device(req.UnitId)
		if err != nil {
			return nil, err
		}
		h.sim.mu.Lock()
		defer h.sim.mu.Unlock()
		for i, v := range req.Args {
			d.regs[site.HoldingRegisters][req.Addr+uint16(i)] = v
		}
		return nil, nil
	}
	return h.readRegs(req.UnitId, site.HoldingRegisters, req.Addr, req.Quantity)
}

func (h *server) HandleInputRegisters(req *modbus.InputRegistersRequest) ([]uint16, error) {
	return h.readRegs(req.UnitId, site.InputRegisters, req.Addr, req.Quantity)
}

// Play runs a scenario from now in the background: each step's ramp starts
// at its offset. Play returns at once; Close or ctx ends it.
func (s *Sim) Play(ctx context.Context, sc Scenario) error {
	for i, st := range sc.Steps {
		if _, ok := s.points[st.Point]; !ok {
			return fmt.Errorf("scenario %s step %d: unknown point %q in site %s", sc.Name, i, st.Point, s.site.ID)
		}
		if math.IsNaN(st.To) || math.IsInf(st.To, 0) || st.At < 0 || st.Over < 0 {
			return fmt.Errorf("scenario %s step %d (%s): needs a finite target and non-negative times", sc.Name, i, st.Point)
		}
	}
	start := time.Now()
	s.mu.Lock()
	for _, st := range sc.Steps {
		s.ramps = append(s.ramps, ramp{point: st.Point, from: math.NaN(), to: st.To, start: start.Add(st.At), end: start.Add(st.At + st.Over)})
	}
	s.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			s.ramps = nil
			s.mu.Unlock()
		case <-s.stop:
		}
	}()
	return nil
}
