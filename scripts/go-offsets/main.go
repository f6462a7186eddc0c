// Prints, as JSON, the struct field offsets telegen's Go probes follow (host/src/gotrace/
// offsets.ts), read from this program's own DWARF: build it with the Go toolchain whose layout
// is wanted, with its DWARF (go build keeps it; go run drops it):
//
//	go build -o /tmp/go-offsets scripts/go-offsets/main.go && /tmp/go-offsets
//
// `/tmp/go-offsets http` prints the row of host/src/gotrace/http-offsets.ts (net/http's server
// and client connection structs the goroutine-aware probes read).
// `/tmp/go-offsets http2` prints the rows of host/src/gotrace/http2.ts instead (net/http's
// bundled HTTP/2 structs the header-field probes read).
//
// Reading DWARF (not unsafe.Offsetof) reaches unexported fields of other packages
// (runtime.g.goid, crypto/tls.Conn.conn) the way a debugger would.
package main

import (
	"crypto/tls"
	"debug/dwarf"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
)

// Code that uses the types keeps them in the binary's DWARF; it never runs.
func keep() {
	c, err := net.Dial("tcp", "127.0.0.1:1")
	if err == nil {
		tc := tls.Client(c, &tls.Config{})
		tc.Write(nil)
		c.(*net.TCPConn).SetNoDelay(true)
	}
	// net/http's server and client both link its bundled HTTP/2.
	http.Get("https://127.0.0.1:1")
	http.ListenAndServeTLS("127.0.0.1:1", "", "", nil)
}

// The bundled HTTP/2 offsets (host/src/gotrace/http2.ts). Interface fields: the data word is
// one pointer in.
func http2Offsets(d *dwarf.Data) map[string]interface{} {
	s := structs(d, map[string]bool{"net/http.http2FrameHeader": true, "net/http.http2HeadersFrame": true,
		"net/http.http2writeResHeaders": true, "net/http.http2serverConn": true, "net/http.http2clientStream": true, "net/http.http2ClientConn": true})
	return map[string]interface{}{
		"goVersion":           runtime.Version(),
		"frameStreamId":       field(s["net/http.http2HeadersFrame"], "http2FrameHeader") + field(s["net/http.http2FrameHeader"], "StreamID"),
		"resHeadersStreamId":  field(s["net/http.http2writeResHeaders"], "streamID"),
		"serverConnConnData":  field(s["net/http.http2serverConn"], "conn") + 8,
		"clientStreamCc":      field(s["net/http.http2clientStream"], "cc"),
		"clientStreamId":      field(s["net/http.http2clientStream"], "ID"),
		"clientConnTconnData": field(s["net/http.http2ClientConn"], "tconn") + 8,
	}
}

// The net/http offsets of the goroutine-aware request probes (host/src/gotrace/http-offsets.ts).
func httpOffsets(d *dwarf.Data) map[string]interface{} {
	s := structs(d, map[string]bool{"net/http.response": true, "net/http.conn": true, "net/http.persistConn": true})
	return map[string]interface{}{
		"goVersion":           runtime.Version(),
		"responseConn":        field(s["net/http.response"], "conn"),
		"connServer":          field(s["net/http.conn"], "server"),
		"connRwcData":         field(s["net/http.conn"], "rwc") + 8,
		"connTlsState":        field(s["net/http.conn"], "tlsState"),
		"persistConnConnData": field(s["net/http.persistConn"], "conn") + 8,
		"persistConnTlsState": field(s["net/http.persistConn"], "tlsState"),
	}
}

func structs(d *dwarf.Data, names map[string]bool) map[string]*dwarf.StructType {
	out := map[string]*dwarf.StructType{}
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil || e == nil {
			break
		}
		if e.Tag != dwarf.TagStructType {
			continue
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		if !names[name] || out[name] != nil {
			continue
		}
		t, err := d.Type(e.Offset)
		if err == nil {
			if st, ok := t.(*dwarf.StructType); ok {
				out[name] = st
			}
		}
	}
	return out
}

func field(st *dwarf.StructType, name string) int64 {
	if st != nil {
		for _, f := range st.Field {
			if f.Name == name {
				return f.ByteOffset
			}
		}
	}
	// A missing field means the layout changed shape: a row must not be guessed.
	fmt.Fprintf(os.Stderr, "field %s not found in this toolchain's DWARF\n", name)
	os.Exit(1)
	return -1
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "keep" {
		keep()
	}
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		panic(err)
	}
	d, err := f.DWARF()
	if err != nil {
		fmt.Fprintln(os.Stderr, "no DWARF (built with -ldflags=-w?):", err)
		os.Exit(1)
	}
	if len(os.Args) > 1 && os.Args[1] == "http2" {
		json.NewEncoder(os.Stdout).Encode(http2Offsets(d))
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "http" {
		json.NewEncoder(os.Stdout).Encode(httpOffsets(d))
		return
	}
	want := map[string]bool{"crypto/tls.Conn": true, "net.TCPConn": true, "net.conn": true, "net.netFD": true, "internal/poll.FD": true, "runtime.g": true}
	s := structs(d, want)
	// tls.Conn.conn is an interface (tab, data): the data word is one pointer in.
	out := map[string]interface{}{
		"goVersion":       runtime.Version(),
		"tlsConnConnData": field(s["crypto/tls.Conn"], "conn") + 8,
		"tcpConnFd":       field(s["net.TCPConn"], "conn") + field(s["net.conn"], "fd"),
		"netFdSysfd":      field(s["net.netFD"], "pfd") + field(s["internal/poll.FD"], "Sysfd"),
		"gGoid":           field(s["runtime.g"], "goid"),
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
