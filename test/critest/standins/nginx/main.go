// Command nginx stands in for nginx in the images critest pulls
// (registry.k8s.io/e2e-test-images/nginx, hostnet-nginx). critest only
// looks at what nginx shows from outside: a web server answering 200 on
// the port its conf.d says, a process whose comm is "nginx" and whose
// command line reads "nginx: master process nginx -g daemon off;", and
// /var/run/nginx.pid. A static Go program shows all of that and needs no
// internet to build.
package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// title is the command line real nginx writes over its argv.
const title = "nginx: master process nginx -g daemon off;"

func main() {
	if len(os.Args) == 0 || os.Args[0] != title {
		// Rewriting argv in place is not possible from Go: exec again
		// with the title as the only argument. The path keeps the comm
		// "nginx" and the pid stays the same.
		exe, err := os.Executable()
		if err == nil {
			err = syscall.Exec(exe, []string{title}, os.Environ())
		}
		fmt.Fprintf(os.Stderr, "nginx: re-exec: %v\n", err)
		os.Exit(1)
	}
	port := listenPort()
	if err := os.MkdirAll("/var/run", 0o755); err == nil {
		os.WriteFile("/var/run/nginx.pid", []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	}
	// As PID 1 a process ignores signals it has no handler for.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
	go func() {
		<-sigs
		os.Remove("/var/run/nginx.pid")
		os.Exit(0)
	}()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "<html><head><title>Welcome to nginx!</title></head><body><h1>Welcome to nginx!</h1></body></html>")
	})
	fmt.Printf("nginx stand-in listening on port %d\n", port)
	if err := http.ListenAndServe(":"+strconv.Itoa(port), nil); err != nil {
		fmt.Fprintf(os.Stderr, "nginx: %v\n", err)
		os.Exit(1)
	}
}

// listenPort is the first "listen N;" in /etc/nginx/conf.d/*.conf, or 80.
func listenPort() int {
	files, _ := filepath.Glob("/etc/nginx/conf.d/*.conf")
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(strings.TrimSuffix(strings.TrimSpace(sc.Text()), ";"))
			if len(fields) == 2 && fields[0] == "listen" {
				if p, err := strconv.Atoi(fields[1]); err == nil {
					fh.Close()
					return p
				}
			}
		}
		fh.Close()
	}
	return 80
}
