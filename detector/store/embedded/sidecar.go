package embedded

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"
)

// Columns kept beside a segment, one file per column under
// <index>/.cols/<segment>/: "ids", "v.<field>" (values) and "t.<field>"
// (times), field names path-escaped. Each file is
//
//	"OTC1" | segment size, mtime (int64) | documents (uint32) | payload | crc32
//
// and is ignored unless all of it checks out against the segment as it is,
// so a stale, torn or foreign file costs a re-read, never a wrong answer.
// They are written without fsync for that reason.
const (
	sidecarDir   = ".cols"
	sidecarMagic = "OTC1"
)

type sidecar struct {
	dir   string
	stamp fileStamp
	log   zerolog.Logger
}

// sidecarFor returns the column files of a segment this package wrote, nil
// for any other file.
func sidecarFor(ix *index, m *fileMeta) *sidecar {
	if !strings.HasPrefix(m.name, "seg-") {
		return nil
	}
	return &sidecar{dir: filepath.Join(ix.dir, sidecarDir, m.name), stamp: m.stamp, log: ix.log}
}

func (sc *sidecar) header(n int) []byte {
	b := append([]byte(nil), sidecarMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(sc.stamp.size))
	b = binary.LittleEndian.AppendUint64(b, uint64(sc.stamp.mtime))
	return binary.LittleEndian.AppendUint32(b, uint32(n))
}

const headerLen = 4 + 8 + 8 + 4

func (sc *sidecar) write(name string, b []byte) {
	b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	err := os.MkdirAll(sc.dir, 0o755)
	if err == nil {
		var f *os.File
		if f, err = os.CreateTemp(sc.dir, ".tmp-*"); err == nil {
			_, err = f.Write(b)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = os.Rename(f.Name(), filepath.Join(sc.dir, name))
			}
			if err != nil {
				os.Remove(f.Name())
			}
		}
	}
	if err != nil {
		sc.log.Debug().Str("dir", sc.dir).Str("column", name).Err(err).Msg("keeping a column beside its segment")
	}
}

// read returns a column file's payload and document count if it is whole
// and belongs to the segment as it is now.
func (sc *sidecar) read(name string) ([]byte, int, bool) {
	b, err := os.ReadFile(filepath.Join(sc.dir, name))
	if err != nil || len(b) < headerLen+4 {
		return nil, 0, false
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, 0, false
	}
	n := int(binary.LittleEndian.Uint32(body[headerLen-4:]))
	if !bytes.Equal(body[:headerLen-4], sc.header(0)[:headerLen-4]) {
		return nil, 0, false
	}
	return body[headerLen:], n, true
}

func (sc *sidecar) writeIDs(ids []string) {
	b := sc.header(len(ids))
	for _, id := range ids {
		b = binary.AppendUvarint(b, uint64(len(id)))
		b = append(b, id...)
	}
	sc.write("ids", b)
}

func (sc *sidecar) readIDs() ([]string, bool) {
	p, n, ok := sc.read("ids")
	if !ok {
		return nil, false
	}
	ids := make([]string, 0, n)
	r := reader{b: p}
	for range n {
		ids = append(ids, r.str())
	}
	return ids, r.done()
}

func (sc *sidecar) writeValues(field string, c *column) {
	b := sc.header(len(c.codes))
	b = binary.AppendUvarint(b, uint64(len(c.dict)))
	for _, v := range c.dict {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	for _, code := range c.codes {
		b = binary.LittleEndian.AppendUint32(b, code)
	}
	b = binary.AppendUvarint(b, uint64(len(c.multi)))
	for i, ps := range c.multi {
		b = binary.AppendUvarint(b, uint64(i))
		b = binary.AppendUvarint(b, uint64(len(ps)))
		for _, p := range ps {
			b = binary.AppendUvarint(b, uint64(p))
		}
	}
	sc.write("v."+url.PathEscape(field), b)
}

func (sc *sidecar) readValues(field string, n int) (*column, bool) {
	p, got, ok := sc.read("v." + url.PathEscape(field))
	if !ok || got != n {
		return nil, false
	}
	r := reader{b: p}
	nd := r.uvarint()
	if nd > uint64(len(p)) {
		return nil, false
	}
	c := &column{dict: make([]string, 0, nd), codes: make([]uint32, n)}
	for range nd {
		c.dict = append(c.dict, r.str())
	}
	for i := range c.codes {
		c.codes[i] = r.uint32()
	}
	nm := r.uvarint()
	if nm > uint64(n) {
		return nil, false
	}
	if nm > 0 {
		c.multi = make(map[int32][]uint32, nm)
	}
	for range nm {
		i := r.uvarint()
		k := r.uvarint()
		if k > uint64(len(c.dict)) || i >= uint64(n) {
			return nil, false
		}
		ps := make([]uint32, k)
		for j := range ps {
			ps[j] = uint32(r.uvarint())
		}
		c.multi[int32(i)] = ps
	}
	if !r.done() {
		return nil, false
	}
	// Codes must point into the dictionary.
	for i, code := range c.codes {
		if code == multiCode {
			if _, ok := c.multi[int32(i)]; !ok {
				return nil, false
			}
		} else if code != 0 && int(code) > len(c.dict) {
			return nil, false
		}
	}
	for _, ps := range c.multi {
		for _, p := range ps {
			if int(p) >= len(c.dict) {
				return nil, false
			}
		}
	}
	return c, true
}

func (sc *sidecar) writeTimes(field string, t []int64) {
	b := sc.header(len(t))
	for _, v := range t {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	sc.write("t."+url.PathEscape(field), b)
}

func (sc *sidecar) readTimes(field string, n int) ([]int64, bool) {
	p, got, ok := sc.read("t." + url.PathEscape(field))
	if !ok || got != n || len(p) != 8*n {
		return nil, false
	}
	t := make([]int64, n)
	for i := range t {
		t[i] = int64(binary.LittleEndian.Uint64(p[8*i:]))
	}
	return t, true
}

// reader decodes a payload; any overrun makes done report false.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) uvarint() uint64 {
	v, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[k:]
	return v
}

func (r *reader) uint32() uint32 {
	if len(r.b) < 4 {
		r.bad, r.b = true, nil
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.bad, r.b = true, nil
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) done() bool { return !r.bad && len(r.b) == 0 }
