// Command streamholder holds event streams open for BenchmarkRevocationWithIdleStreams, in a
// process of its own as resource servers would be: it opens one stream per line of stdin
// ("URL CLIENT_ID CLIENT_SECRET"), reads and discards what they carry, prints "ready" once they
// are all open, and exits when stdin closes.
package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

func main() {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1000}}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break
		}
		f := strings.Fields(line)
		req, _ := http.NewRequest("GET", f[0], nil)
		req.SetBasicAuth(f[1], f[2])
		res, err := hc.Do(req)
		if err != nil || res.StatusCode != 200 {
			fmt.Println("error", res, err)
			os.Exit(1)
		}
		go io.Copy(io.Discard, res.Body)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
}
