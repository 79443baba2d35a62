// ferry-echo: the loopback node tests' container (tests/integration/test_node.py).
// A static HTTP server, so its image needs no base: it listens where -listen says
// (127.0.0.1 under hostNetwork), answers /healthz for the readiness probe, and / with
// what only the pod knows (its name from the downward API, a message from its spec,
// its uid), so a test can tell the answer came from that pod.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"os"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve on")
	flag.Parse()
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"pod": os.Getenv("POD_NAME"), "message": os.Getenv("MESSAGE"), "uid": os.Getuid(),
		})
	})
	log.Printf("ferry-echo: serving on %s", *listen)
	log.Fatal(http.ListenAndServe(*listen, nil))
}
