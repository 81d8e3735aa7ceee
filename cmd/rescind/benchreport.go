package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// newBenchReportCommand is `rescind bench report`: the Markdown table of several runs'
// `rescind bench --json` output, as the README shows it.
func newBenchReportCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "report RUN.json...",
		Short: "Print the Markdown table of several runs of rescind bench --json: medians, (min-max)",
		Long: `Read the --json output of one or more runs of rescind bench and print, for each scenario, token
format and database, the median over the runs of rescind's requests per second, its ratio to the
ceiling measured in the same run, its p99 latency and that p99's ratio to the ceiling's, each
with the range (min-max) over the runs; then the embedded server's start-up (time to ready and
peak RSS until then, with the revocation records preloaded) and its peak RSS over the runs.`,
		Example: `  for i in 1 2 3; do rescind bench --ceiling --token-format opaque,jwt --json > run$i.json; done
  rescind bench report run1.json run2.json run3.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var runs [][]benchResult
			for _, name := range args {
				b, err := os.ReadFile(name)
				if err != nil {
					return err
				}
				var rs []benchResult
				if err := json.Unmarshal(b, &rs); err != nil {
					return fmt.Errorf("%s: not the output of rescind bench --json: %w", name, err)
				}
				runs = append(runs, rs)
			}
			return writeBenchReport(cmd.OutOrStdout(), runs)
		},
	}
}

// benchOperation names each scenario in the report.
var benchOperation = map[string]string{
	"token":      "client_credentials token",
	"introspect": "introspection of a valid token",
	"revoke":     "revocation of distinct tokens, durable before the 200",
	"mixed":      "mixed token:introspect:revoke",
	"resource":   "resource server request (middleware) with a valid token",
}

// writeBenchReport writes the Markdown report of runs.
func writeBenchReport(w io.Writer, runs [][]benchResult) error {
	type key struct{ database, scenario, format string }
	type figures struct{ rps, ratio, p99, ratioP99 []float64 }
	rows := map[key]*figures{}
	var order []key
	ready := map[string][]float64{} // database -> ready seconds, one per run
	readyRSS := map[string][]float64{}
	preloaded := map[string]int{}
	peakRSS := 0.0
	multiDB := false
	for _, rs := range runs {
		seenStart := map[string]bool{}
		runDB := "" // the database of the run's server: the floor's row goes with its rows
		for _, r := range rs {
			if r.Target == "rescind" && runDB == "" {
				runDB = r.Database
			}
		}
		for _, r := range rs {
			if r.Target == "ceiling" {
				continue
			}
			k := key{r.Database, r.Scenario, r.TokenFormat}
			if r.Target == "signing-floor" {
				k.database, k.format = runDB, r.TokenFormat+", floor: a handler that only parses the form and signs one ES256 token"
			}
			if rows[k] == nil {
				rows[k] = &figures{}
				order = append(order, k)
			}
			f := rows[k]
			f.rps, f.p99 = append(f.rps, r.RPS), append(f.p99, r.P99ms)
			if r.RatioRPS > 0 {
				f.ratio, f.ratioP99 = append(f.ratio, r.RatioRPS), append(f.ratioP99, r.RatioP99)
			}
			if r.Target != "signing-floor" {
				peakRSS = max(peakRSS, r.PeakRSSMiB)
			}
			if r.ReadySeconds > 0 && !seenStart[r.Database] {
				seenStart[r.Database] = true
				ready[r.Database] = append(ready[r.Database], r.ReadySeconds)
				readyRSS[r.Database] = append(readyRSS[r.Database], r.ReadyRSSMiB)
				preloaded[r.Database] = r.Preloaded
			}
			if r.Database != "" && len(order) > 0 && order[0].database != r.Database {
				multiDB = true
			}
		}
	}
	if len(order) == 0 {
		return fmt.Errorf("no results of rescind in the runs given")
	}
	rank := func(list []string, v string) int {
		if i := slices.Index(list, v); i >= 0 {
			return i
		}
		return len(list)
	}
	slices.SortStableFunc(order, func(a, b key) int {
		if c := rank([]string{"sqlite", "postgres"}, a.database) - rank([]string{"sqlite", "postgres"}, b.database); c != 0 {
			return c
		}
		if c := rank(benchScenarios, a.scenario) - rank(benchScenarios, b.scenario); c != 0 {
			return c
		}
		return rank([]string{"opaque", "jwt"}, a.format) - rank([]string{"opaque", "jwt"}, b.format)
	})
	// Each row's figures come from the runs that measured it (runs of several databases give
	// each database's rows their own runs).
	n := 0
	for _, k := range order {
		n = max(n, len(rows[k].rps))
	}
	fmt.Fprintf(w, "Median of %d run%s (min-max).\n\n", n, map[bool]string{true: "", false: "s"}[n == 1])
	head := "| operation | token format | rescind req/s | ratio to ceiling | rescind p99 | p99 / ceiling p99 |"
	rule := "|---|---|---|---|---|---|"
	if multiDB {
		head, rule = "| database "+head, "|---"+rule
	}
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, rule)
	for _, k := range order {
		f := rows[k]
		op := benchOperation[k.scenario]
		if op == "" {
			op = k.scenario
		}
		cells := []string{op, k.format, spread(f.rps, thousands), spread(f.ratio, fixed2), spread(f.p99, millis), spread(f.ratioP99, fixed2)}
		if multiDB {
			cells = append([]string{k.database}, cells...)
		}
		fmt.Fprintln(w, "| "+strings.Join(cells, " | ")+" |")
	}
	fmt.Fprintln(w)
	for _, db := range []string{"sqlite", "postgres", ""} {
		if len(ready[db]) == 0 {
			continue
		}
		name := db
		if name == "" {
			name = "the server"
		}
		fmt.Fprintf(w, "Start-up (%s): ready %s s after exec with %s revocation records preloaded; peak RSS until ready %s MiB.\n",
			name, spread(ready[db], fixed2), thousands(float64(preloaded[db])), spread(readyRSS[db], whole))
	}
	fmt.Fprintf(w, "Server peak RSS over these runs: %s MiB.\n", whole(peakRSS))
	return nil
}

// spread formats the median of vs and, with several, their range: "1,234 (1,100-1,300)".
func spread(vs []float64, format func(float64) string) string {
	if len(vs) == 0 {
		return "-"
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	if len(s) == 1 {
		return format(med)
	}
	return fmt.Sprintf("%s (%s-%s)", format(med), format(s[0]), format(s[len(s)-1]))
}

func fixed2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

func whole(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }

func millis(v float64) string {
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 2, 64) + " ms"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
}

// thousands formats v rounded, with commas between thousands.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
