// Command curl stands in for curl in the agnhost image (upstream's is
// Alpine with curl installed; this one is busybox, which has no curl).
// It does what the suite's specs ask of curl and nothing more: GET a
// URL, print the body (or, with -i, the status line and headers first),
// -o FILE to write the body elsewhere, -w '%{http_code}' to print the
// status, --max-time and --connect-timeout; -g, -q and -s change
// nothing here. A flag it does not know is an error, not ignored.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	var url, out, format string
	var include bool
	maxTime, connectTimeout := time.Duration(0), time.Duration(0)
	seconds := func(v string) (time.Duration, error) {
		f, err := strconv.ParseFloat(v, 64)
		return time.Duration(f * float64(time.Second)), err
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		value := func() string {
			if i+1 >= len(args) {
				fmt.Fprintf(os.Stderr, "curl: option %s: requires a value\n", a)
				os.Exit(2)
			}
			i++
			return args[i]
		}
		var err error
		switch a {
		case "-g", "-q", "-s", "--silent", "--globoff":
		case "-i", "--include":
			include = true
		case "-o", "--output":
			out = value()
		case "-w", "--write-out":
			format = value()
		case "-m", "--max-time":
			maxTime, err = seconds(value())
		case "--connect-timeout":
			connectTimeout, err = seconds(value())
		default:
			if strings.HasPrefix(a, "-") {
				fmt.Fprintf(os.Stderr, "curl (stand-in): option %s is not supported\n", a)
				return 2
			}
			url = a
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "curl: option %s: %v\n", a, err)
			return 2
		}
	}
	if url == "" {
		fmt.Fprintln(os.Stderr, "curl: no URL specified")
		return 2
	}
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	client := &http.Client{Timeout: maxTime, Transport: &http.Transport{
		DialContext: (&net.Dialer{Timeout: connectTimeout}).DialContext,
	}}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintf(os.Stderr, "curl: %v\n", err)
		if format != "" {
			fmt.Print(strings.ReplaceAll(format, "%{http_code}", "000"))
		}
		return 7 // curl's "failed to connect"
	}
	defer resp.Body.Close()
	body := io.Writer(os.Stdout)
	if out != "" && out != "-" {
		f, err := os.Create(out)
		if err != nil {
			fmt.Fprintf(os.Stderr, "curl: %v\n", err)
			return 23
		}
		defer f.Close()
		body = f
	}
	if include {
		fmt.Fprintf(body, "%s %s\r\n", resp.Proto, resp.Status)
		resp.Header.Write(body)
		fmt.Fprint(body, "\r\n")
	}
	if _, err := io.Copy(body, resp.Body); err != nil {
		fmt.Fprintf(os.Stderr, "curl: %v\n", err)
		return 56
	}
	if format != "" {
		fmt.Print(strings.ReplaceAll(format, "%{http_code}", strconv.Itoa(resp.StatusCode)))
	}
	return 0
}
