package revocation

import "testing"

var sinkID id16
var sinkOK bool

func BenchmarkParseIDs(b *testing.B) {
	jti, gid := idText(7), grantText(7)
	b.Run("token", func(b *testing.B) {
		for b.Loop() {
			sinkID, sinkOK = parseTokenID(jti)
		}
	})
	b.Run("grant", func(b *testing.B) {
		for b.Loop() {
			sinkID, sinkOK = parseGrantID(gid)
		}
	})
}
