package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/internal/keys"
	"github.com/rescind/rescind/token"
)

func newKeysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the server's keys: list, rotate, retire",
		Long: `Manage the server's keys (through the running server's admin API). There are two uses:
"sig", the keys that sign JWTs (published at /.well-known/jwks.json, each with its "alg"), and
"enc", the keys that seal opaque access tokens. Signing keys come per algorithm ("alg"): the
--signing-alg one (ES256 or EdDSA) signs JWT access tokens and status lists; an RS256 key (RSA
3072 bits), and an ES256 or EdDSA key, are made the first time something must be signed with that
algorithm (ID tokens, security event tokens). The keys of each algorithm rotate, retire and have
their states apart. Each key is in one state:

  next        published (and accepted), not yet signing
  active      the one key of its use (and, signing, of its algorithm) that signs or seals
  retiring    replaced: still published and accepted until every token it can have signed has expired
  superseded  a next key overtaken by a newer one (rotate --now) before it ever signed or sealed:
              accepted like a retiring key until the same moment
  retired     refused everywhere (retired by an operator, or past its retiring period)`,
	}
	addSettingFlags(cmd, true, "admin_url", "admin_ca")
	cmd.AddCommand(newKeysListCommand(), newKeysRotateCommand(), newKeysRetireCommand())
	return cmd
}

func newKeysListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the keys as JSON (kid, use, alg, created, state, activates, retires, retired)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			list, err := adminClient(st).ListKeys(cmd.Context())
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), list)
		},
	}
}

// defaultActivationDelay is keys.ActivationDelay with the default --clock-skew and
// --poll-interval (settingsTable).
func defaultActivationDelay() time.Duration {
	def := func(key string) time.Duration {
		for _, st := range settingsTable {
			if st.key == key {
				d, _ := time.ParseDuration(st.def)
				return d
			}
		}
		return 0
	}
	return keys.ActivationDelay(def("clock_skew"), def("poll_interval"))
}

func newKeysRotateCommand() *cobra.Command {
	var now bool
	cmd := &cobra.Command{
		Use:   "rotate [--now]",
		Short: "Rotate the sealing key and the signing key of each algorithm; tokens of the old keys keep working",
		Long: fmt.Sprintf(`Rotate every key: generate a new sealing key (for opaque access tokens) and a new signing key of
each algorithm the server signs with (signing_keys: the --signing-alg one for JWT access tokens and
status lists, and RS256, ES256 or EdDSA if it has one), and print their ids as JSON.

The new sealing key seals at once. Each new signing key is published in the JWKS at once but
signs only once every JWKS served without it has left the verifiers' caches: after the JWKS cache
lifetime (max-age %v), plus the server's --poll-interval (an instance that missed the notification
learns of the key by its poll) and --clock-skew (the moment is read by each instance's clock),
plus 10 seconds for a JWKS response in flight: %v with the defaults. A verifier that caches the
JWKS, and refetches it on an unknown kid at most every few minutes, never meets a kid it cannot
know. Until then the key is in state "next" (its "activates" says when). Tokens signed or sealed by the old keys keep working until they expire;
the old keys then retire by themselves.

--now makes the new signing keys sign at once: for emergencies (a compromised key, before
"rescind keys retire" of the old one). A verifier that fetched the JWKS just before may then
refuse new tokens until it refetches (up to its refetch interval, 5 minutes for some).`,
			token.JWKSMaxAge, defaultActivationDelay()),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			out, err := adminClient(st).RotateKeys(cmd.Context(), admin.RotateKeysRequest{Now: now})
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	cmd.Flags().BoolVar(&now, "now", false, "sign with the new key at once (emergencies: cached JWKS may not know it yet)")
	return cmd
}

func newKeysRetireCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "retire KID",
		Short: "Retire a key at once: every token it sealed or signed is refused from now on",
		Long: `Retire a key at once (a compromised key): every instance refuses the tokens it sealed or signed,
a retired signing key leaves the JWKS, and resource servers subscribed to the revocation events
drop it when the event arrives (others within the JWKS cache lifetime). A retired key never
comes back.

Any key can be retired, of any use and algorithm. The key in use (of its algorithm, for a signing
key) cannot be retired unless a newer key of the same algorithm can take over: rotate first. If a
rotated key is still waiting to sign ("next"), retiring the active key makes it take over at once;
the keys of the other algorithms do not change.

Emergency procedure for a compromised key: note its kid FIRST (a leaked JWT's header names it;
or the "active" key in "rescind keys list"), never from the states after a rotation (a rotation
makes the key in force "retiring" and a "next" key "superseded"), then:
  rescind keys rotate --now     # a new key signs at once
  rescind keys retire OLD_KID   # the old key's tokens are refused everywhere`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			out, err := adminClient(st).RetireKey(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
}
