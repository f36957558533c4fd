package site

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// Site is one site file: an enterprise's monitored installation with its
// gateways and major hazard sources.
type Site struct {
	ID             string `yaml:"id"`
	Name           string `yaml:"name"`
	EnterpriseCode string `yaml:"enterprise_code"` // 统一社会信用代码
	Region         string `yaml:"region"`          // GB/T 2260 county-level code (行政区划代码), e.g. 350404
	// Location is where the site lies (WGS-84), for the risk map.
	Location *Location `yaml:"location"`
	Gateways []Gateway `yaml:"gateways"`
	Sources  []Source  `yaml:"sources"`
	// Policy overrides the default grading policy for every source of the
	// site; a source's own policy overrides this one.
	Policy *Policy `yaml:"policy"`

	// File is the path the site was loaded from; set by Load.
	File string `yaml:"-"`

	points  map[string]*PointRef
	devices map[string]*Device
}

// Gateway is an edge gateway at the site; it polls its devices and publishes
// their readings.
type Gateway struct {
	ID      string   `yaml:"id"`
	Name    string   `yaml:"name"`
	Devices []Device `yaml:"devices"`
}

// Transport is how a gateway reaches a Modbus device.
type Transport string

// Transports a device may use.
const (
	TransportTCP Transport = "tcp"
	TransportRTU Transport = "rtu"
	// TransportRTUOverTCP is Modbus RTU frames over a TCP connection: a
	// serial device server (Moxa NPort, USR-TCP232 and the like) in
	// transparent mode in front of an RS-485 bus.
	TransportRTUOverTCP Transport = "rtu_over_tcp"
)

// Device is one Modbus slave: a gas alarm controller, a transmitter, a PLC.
type Device struct {
	ID        string    `yaml:"id"`
	Name      string    `yaml:"name"`
	Transport Transport `yaml:"transport"` // tcp (default), rtu or rtu_over_tcp
	Address   string    `yaml:"address"`   // host:port, for tcp and rtu_over_tcp
	Serial    *Serial   `yaml:"serial"`    // for rtu
	UnitID    uint8     `yaml:"unit_id"`   // Modbus slave id; default 1
	// PollInterval is how often the device is read; default 1s.
	PollInterval Duration `yaml:"poll_interval"`
	// Timeout bounds one request; default 1s.
	Timeout Duration `yaml:"timeout"`
	// Retries is how many times a failed request is repeated within one
	// poll before its points are marked comm_fail; default 1.
	Retries *int `yaml:"retries"`
	// MaxGap is the largest run of unused registers that is still read to
	// merge two neighbouring blocks into one request; default 8.
	MaxGap *int `yaml:"max_gap"`
	// PauseBetweenRequests is a silence kept on the device's line between
	// two requests, for slow RS-485 converters and devices that need time
	// to turn the bus around; on a shared line the largest of its devices'
	// applies. Default 0 (the Modbus RTU 3.5-character gap is always kept).
	PauseBetweenRequests Duration `yaml:"pause_between_requests"`
	// PauseAfterOpen is a wait after the serial port or TCP connection was
	// opened, before the first request; default 0.
	PauseAfterOpen Duration `yaml:"pause_after_open"`

	// Gateway is the id of the gateway the device hangs off; set by Load.
	Gateway string `yaml:"-"`
}

// Serial holds the line settings of an RS-485/RS-232 bus.
type Serial struct {
	Port     string `yaml:"port"`      // e.g. /dev/ttyS1
	BaudRate int    `yaml:"baud_rate"` // default 9600
	DataBits int    `yaml:"data_bits"` // default 8
	Parity   string `yaml:"parity"`    // N (default), E or O
	StopBits int    `yaml:"stop_bits"` // default 1
}

// SourceType says what kind of installation a major hazard source is.
type SourceType string

// Source types.
const (
	TankFarm    SourceType = "tank_farm"    // 储罐区
	Storage     SourceType = "storage"      // 库区
	ProcessUnit SourceType = "process_unit" // 生产装置
	GasHolder   SourceType = "gas_holder"   // 气柜
	CoalFace    SourceType = "coal_face"    // 采煤工作面
	HeadingFace SourceType = "heading_face" // 掘进工作面
	CoalMine    SourceType = "coal_mine"    // 煤矿（其他监控区域）
)

var sourceTypes = []SourceType{TankFarm, Storage, ProcessUnit, GasHolder, CoalFace, HeadingFace, CoalMine}

// IsCoalMine reports whether the source is underground coal-mine
// installation, where AQ 6201 power-off limits apply.
func (t SourceType) IsCoalMine() bool {
	return t == CoalFace || t == HeadingFace || t == CoalMine
}

// Source is a major hazard source (重大危险源) with its monitoring points.
type Source struct {
	ID   string     `yaml:"id"`
	Name string     `yaml:"name"`
	Type SourceType `yaml:"type"`
	// Grade is the GB 18218-2018 grade: 1 (一级, most severe) to 4.
	Grade  int     `yaml:"grade"`
	Points []Point `yaml:"points"`
	// Location is where the source lies (WGS-84); the site's when unset.
	Location *Location `yaml:"location"`
	// Votes are k-of-n groups: k points of the group in alarm together
	// mean a real release, where one alone may be a faulty head.
	Votes  []Vote  `yaml:"votes"`
	Policy *Policy `yaml:"policy"`
	// Responsible names the source's 包保责任人 (site/persons.go).
	Responsible *Responsible `yaml:"responsible"`
}

// Vote is a k-of-n voting group over points of one source.
type Vote struct {
	ID     string   `yaml:"id"`
	Name   string   `yaml:"name"`
	K      int      `yaml:"k"`
	Points []string `yaml:"points"`
}

// Kind is what a monitoring point measures.
type Kind string

// Measurement kinds.
const (
	CombustibleGas Kind = "combustible_gas" // %LEL
	ToxicGas       Kind = "toxic_gas"       // ppm
	Oxygen         Kind = "oxygen"          // %vol
	Methane        Kind = "methane"         // %CH4, coal mines
	Pressure       Kind = "pressure"
	Level          Kind = "level"
	Temperature    Kind = "temperature"
	Flow           Kind = "flow"
)

var kinds = []Kind{CombustibleGas, ToxicGas, Oxygen, Methane, Pressure, Level, Temperature, Flow}

// IsGas reports whether the kind is a gas detector, whose alarms must be
// fast and whose heads may be voted.
func (k Kind) IsGas() bool {
	return k == CombustibleGas || k == ToxicGas || k == Oxygen || k == Methane
}

// Point is one monitored measurement.
type Point struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	Kind Kind   `yaml:"kind"`
	Gas  string `yaml:"gas"` // for gas kinds: NH3, H2S, CO, CH4, LPG …
	Unit string `yaml:"unit"`
	// Range is the measuring range [min, max] in engineering units.
	Range  Range   `yaml:"range"`
	Modbus Mapping `yaml:"modbus"`
	Limits Limits  `yaml:"limits"`
	// PowerOff marks a coal-mine methane point whose HH is the power-off
	// (断电) set point of AQ 6201; HH then clears only below Limits.Restore.
	PowerOff bool `yaml:"power_off"`
	// Deadband is the hysteresis, in engineering units, a value must move
	// back past a limit before the condition clears; default per kind.
	Deadband *float64 `yaml:"deadband"`
	// OnDelay: a limit must be exceeded this long before it raises.
	OnDelay *Duration `yaml:"on_delay"`
	// OffDelay: a condition must be gone this long before it clears.
	OffDelay *Duration `yaml:"off_delay"`
	// RateOfChange raises when the value moves faster than allowed.
	RateOfChange *RateOfChange `yaml:"rate_of_change"`
	// StaleAfter: no reading for this long means the data is lost;
	// default three poll intervals of the point's device.
	StaleAfter *Duration `yaml:"stale_after"`
	// StuckAfter: a gas detector whose value does not move at all for this
	// long is suspect (a blocked or dead head); off when unset.
	StuckAfter *Duration `yaml:"stuck_after"`
	// Report, when set, has the gateway send the point by exception
	// instead of at every poll; off by default.
	Report *Report `yaml:"report"`
}

// Report sends a point only when its value moved by Deadband or more since
// it was last sent, its quality changed, or Heartbeat passed without a send.
type Report struct {
	Deadband  float64  `yaml:"deadband"`  // engineering units
	Heartbeat Duration `yaml:"heartbeat"` // default 60s
}

// Range is a measuring range [min, max].
type Range struct {
	Min, Max float64
}

// UnmarshalYAML reads a range written as a two-element sequence.
func (r *Range) UnmarshalYAML(n *yaml.Node) error {
	var v []float64
	if err := n.Decode(&v); err != nil || len(v) != 2 {
		return typeError(n, "range must be [min, max]")
	}
	r.Min, r.Max = v[0], v[1]
	return nil
}

// Span is Max - Min.
func (r Range) Span() float64 { return r.Max - r.Min }

// Limits are a point's alarm set points in engineering units; nil means
// not set. LL ≤ L ≤ H ≤ HH must hold.
type Limits struct {
	HH *float64 `yaml:"hh"` // second level high (二级报警 / 断电)
	H  *float64 `yaml:"h"`  // first level high (一级报警)
	L  *float64 `yaml:"l"`  // first level low
	LL *float64 `yaml:"ll"` // second level low
	// Restore is the power-restore (复电) value of a power-off point: HH
	// clears only below it.
	Restore *float64 `yaml:"restore"`
}

// RateOfChange limits how fast a value may move, in engineering units per
// minute, measured over Window.
type RateOfChange struct {
	Rise   *float64 `yaml:"rise"`   // units per minute; nil: not checked
	Fall   *float64 `yaml:"fall"`   // units per minute, positive; nil: not checked
	Window Duration `yaml:"window"` // default 1m
}

// Table is a Modbus data table.
type Table string

// Modbus tables.
const (
	Coils            Table = "coil"
	DiscreteInputs   Table = "discrete_input"
	HoldingRegisters Table = "holding"
	InputRegisters   Table = "input"
)

var tables = []Table{Coils, DiscreteInputs, HoldingRegisters, InputRegisters}

// IsBit reports whether the table holds single bits.
func (t Table) IsBit() bool { return t == Coils || t == DiscreteInputs }

// DataType is how a value is encoded in registers.
type DataType string

// Data types.
const (
	Bool    DataType = "bool"
	Int16   DataType = "int16"
	Uint16  DataType = "uint16"
	Int32   DataType = "int32"
	Uint32  DataType = "uint32"
	Int64   DataType = "int64"
	Uint64  DataType = "uint64"
	Float32 DataType = "float32"
	Float64 DataType = "float64"
)

var dataTypes = []DataType{Bool, Int16, Uint16, Int32, Uint32, Int64, Uint64, Float32, Float64}

// Registers is how many 16-bit registers the type occupies.
func (d DataType) Registers() int {
	switch d {
	case Int32, Uint32, Float32:
		return 2
	case Int64, Uint64, Float64:
		return 4
	default:
		return 1
	}
}

// ByteOrder names the order of the bytes of a multi-register value, A being
// the most significant byte: ABCD is big-endian (Modbus' own), CDAB swaps
// the words, BADC swaps the bytes in each word, DCBA is little-endian.
type ByteOrder string

// Byte orders.
const (
	ABCD ByteOrder = "ABCD"
	CDAB ByteOrder = "CDAB"
	BADC ByteOrder = "BADC"
	DCBA ByteOrder = "DCBA"
)

var byteOrders = []ByteOrder{ABCD, CDAB, BADC, DCBA}

// Mapping says where and how a point's value sits in a Modbus device.
type Mapping struct {
	Device  string    `yaml:"device"`
	Table   Table     `yaml:"table"`   // default holding
	Address uint16    `yaml:"address"` // zero-based register or bit address
	Type    DataType  `yaml:"type"`    // default uint16 (bool for bit tables)
	Order   ByteOrder `yaml:"order"`   // default ABCD
	// Bit selects one bit (0 = least significant) of a register; the
	// point's value is then 0 or 1.
	Bit *int `yaml:"bit"`
	// Scale and Offset turn the raw number into engineering units:
	// value = raw*scale + offset. Scale defaults to 1.
	Scale  *float64 `yaml:"scale"`
	Offset float64  `yaml:"offset"`
	// CurrentLoop, when set, says the raw number is a 4–20 mA signal: the
	// value is mapped linearly from [4, 20] mA onto the point's range, and
	// a signal outside NAMUR NE 43 (below 3.8 mA or above 20.5 mA) is a
	// sensor fault, not a value.
	CurrentLoop *CurrentLoop `yaml:"current_loop"`
}

// CurrentLoop gives the raw readings, after Scale and Offset, that stand for
// 4 mA and 20 mA.
type CurrentLoop struct {
	RawAt4mA  float64 `yaml:"raw_at_4ma"`
	RawAt20mA float64 `yaml:"raw_at_20ma"`
}

// Duration is a time.Duration written as "500ms", "1s", "10m".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return typeError(n, "want a duration such as 500ms, 1s or 10m")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return typeError(n, fmt.Sprintf("%q is not a duration (write 500ms, 1s or 10m)", s))
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// PointRef locates a point within its site.
type PointRef struct {
	Site   *Site
	Source *Source
	Point  *Point
	Device *Device
}

// Point returns the point with the given id, or nil.
func (s *Site) Point(id string) *PointRef { return s.points[id] }

// Device returns the device with the given id, or nil.
func (s *Site) Device(id string) *Device { return s.devices[id] }

// Gateway returns the gateway with the given id, or nil.
func (s *Site) Gateway(id string) *Gateway {
	for i := range s.Gateways {
		if s.Gateways[i].ID == id {
			return &s.Gateways[i]
		}
	}
	return nil
}

// Source returns the hazard source with the given id, or nil.
func (s *Site) Source(id string) *Source {
	for i := range s.Sources {
		if s.Sources[i].ID == id {
			return &s.Sources[i]
		}
	}
	return nil
}

// PointsOfDevice lists the points read from a device, in file order.
func (s *Site) PointsOfDevice(deviceID string) []*PointRef {
	var out []*PointRef
	for si := range s.Sources {
		for pi := range s.Sources[si].Points {
			p := &s.Sources[si].Points[pi]
			if p.Modbus.Device == deviceID {
				out = append(out, s.points[p.ID])
			}
		}
	}
	return out
}

// typeError reports a value that cannot be decoded in the form the YAML
// decoder collects, so that decoding goes on and every problem is listed.
func typeError(n *yaml.Node, msg string) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, msg)}}
}
