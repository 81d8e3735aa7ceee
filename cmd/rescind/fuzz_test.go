package main

import "testing"

// FuzzParseConfig: any config file is parsed or refused with an error, never a panic; an
// accepted one names only known settings.
func FuzzParseConfig(f *testing.F) {
	f.Add(".yaml", "addr: 127.0.0.1:8080\nlog_format: json\n")
	f.Add(".toml", "addr = \"127.0.0.1:8080\"\n")
	f.Add(".yaml", "addr: [1, 2]\n")
	f.Add(".toml", "[[x]]\n")
	f.Add(".yml", "&a [*a]")
	f.Fuzz(func(t *testing.T, ext, data string) {
		m, err := parseConfig(ext, []byte(data))
		if err != nil {
			return
		}
		for k := range m {
			found := false
			for _, st := range settingsTable {
				found = found || st.key == k
			}
			if !found {
				t.Fatalf("unknown key %q accepted", k)
			}
		}
	})
}
