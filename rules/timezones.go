package rules

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	// Timezone checks must work in minimal containers without
	// /usr/share/zoneinfo.
	_ "time/tzdata"

	"gopkg.in/yaml.v3"
)

// tzFile is one timezone mapping (identity -> IANA name), read once per
// load however many rules name it.
type tzFile struct {
	names map[string]string
	locs  map[string]*time.Location
	ok    bool
	err   error
}

var locCache sync.Map // name -> *time.Location

// loadLocation is time.LoadLocation without "Local" (which depends on the
// machine) and with a cache (mappings repeat the same few zones).
func loadLocation(name string) (*time.Location, error) {
	if name == "" || name == "Local" || strings.ContainsAny(name, "\x00\\") {
		return nil, errors.New("unknown time zone " + name)
	}
	if v, ok := locCache.Load(name); ok {
		return v.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locCache.Store(name, loc)
	return loc, nil
}

// timezones loads the rule's per-entity timezone mapping.
func (rd *ruleDecoder) timezones(n *yaml.Node, o *OffHours) {
	ctx := rd.ctx
	name, err := ctx.resolve(rd.raw, o.Timezones)
	if err != nil {
		rd.errf(n, "off_hours.timezones", "%v", err)
		return
	}
	tz, ok := ctx.tz[name]
	if !ok {
		tz = ctx.readTimezones(name)
		ctx.tz[name] = tz
	}
	switch {
	case tz.err != nil:
		rd.errf(n, "off_hours.timezones", "cannot read %s: %s", ctx.display(name), pathErr(tz.err))
	case !tz.ok:
		rd.errf(n, "off_hours.timezones", "%s has errors (listed with it)", ctx.display(name))
	default:
		o.TimezoneByEntity = tz.names
		o.locations = tz.locs
	}
}

func (ctx *loadCtx) readTimezones(name string) *tzFile {
	data, err := ctx.read(name)
	if err != nil {
		return &tzFile{err: err}
	}
	d := &dec{file: ctx.display(name)}
	var tz *tzFile
	func() {
		defer func() {
			if p := recover(); p != nil {
				d.errf(nil, "", "cannot parse: %v", p)
			}
		}()
		if strings.EqualFold(path.Ext(name), ".csv") {
			tz = decodeTimezonesCSV(d, data)
			return
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			diag := Diagnostic{File: d.file, Message: err.Error()}
			d.diags = append(d.diags, diag)
			d.bad = true
			return
		}
		if len(doc.Content) == 0 {
			d.errf(nil, "", "empty timezone mapping")
			return
		}
		tz = decodeTimezonesYAML(d, deref(doc.Content[0]))
	}()
	ctx.tzDiags = append(ctx.tzDiags, d.diags...)
	if tz == nil {
		tz = &tzFile{}
	}
	tz.ok = !d.bad
	return tz
}

// decodeTimezonesYAML reads {identity: zone} or {timezones: {identity: zone}}.
func decodeTimezonesYAML(d *dec, root *yaml.Node) *tzFile {
	tz := &tzFile{names: map[string]string{}, locs: map[string]*time.Location{}}
	if root != nil && root.Kind == yaml.MappingNode && hasKey(root, "timezones") {
		m, ok := d.mapping(root, "", []string{"timezones"})
		if !ok {
			return tz
		}
		root = m.vals["timezones"]
	}
	m, ok := d.mapping(root, "timezones", nil)
	if !ok {
		return tz
	}
	for _, k := range m.order {
		v := m.vals[k]
		zone, ok := d.nonEmpty(v, k)
		if !ok {
			continue
		}
		tz.add(d, deref(v), k, zone)
	}
	return tz
}

// decodeTimezonesCSV reads "identity,timezone" lines, with an optional
// header and '#' comments.
func decodeTimezonesCSV(d *dec, data []byte) *tzFile {
	tz := &tzFile{names: map[string]string{}, locs: map[string]*time.Location{}}
	r := csv.NewReader(bytes.NewReader(data))
	r.Comment = '#'
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	first := true
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			diag := Diagnostic{File: d.file, Message: err.Error()}
			if errors.As(err, &pe) {
				diag.Line, diag.Column, diag.Message = pe.Line, pe.Column, pe.Err.Error()
			}
			d.diags = append(d.diags, diag)
			d.bad = true
			return tz
		}
		line, col := r.FieldPos(0)
		at := &yaml.Node{Line: line, Column: col}
		if len(rec) != 2 {
			d.errf(at, "", "expected 2 columns (identity,timezone), got %d", len(rec))
			continue
		}
		entity, zone := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		if first {
			first = false
			if z := strings.ToLower(zone); z == "timezone" || z == "tz" || z == "time_zone" {
				continue
			}
		}
		if entity == "" {
			d.errf(at, "", "empty identity")
			continue
		}
		zl, zc := r.FieldPos(1)
		tz.add(d, &yaml.Node{Line: zl, Column: zc}, entity, zone)
	}
	return tz
}

func (tz *tzFile) add(d *dec, at *yaml.Node, entity, zone string) {
	if _, dup := tz.names[entity]; dup {
		d.errf(at, "", "%q listed twice", entity)
		return
	}
	loc, err := loadLocation(zone)
	if err != nil {
		d.errf(at, "", "unknown timezone %q for %q: want an IANA name like Europe/Paris", zone, entity)
		return
	}
	tz.names[entity] = zone
	tz.locs[entity] = loc
}
