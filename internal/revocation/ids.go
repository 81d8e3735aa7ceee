package revocation

// id16 is a token or grant id in the form the server makes them, 16 random bytes, held without
// its text: a fifth of the memory of the string and its header, and no pointer for the garbage
// collector to follow.
type id16 [16]byte

// Decoding tables: the value of each character, or 0xff.
var (
	b64URLValue = decodeTable("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
	b32LowValue = decodeTable("abcdefghijklmnopqrstuvwxyz234567")
)

func decodeTable(alphabet string) (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}

// parseTokenID decodes a token id (jti) written as the server writes them: 16 bytes as 22
// characters of unpadded base64url. Only the one canonical text of each id decodes (the last
// character's 4 unused bits must be zero), so that two texts never share an id16. It is on the
// path of every token check: 5 blocks of 4 characters, no branch per character.
func parseTokenID[T string | []byte](s T) (id16, bool) {
	var id id16
	if len(s) != 22 {
		return id, false
	}
	var bad byte // an invalid character's value, 0xff, has the high bit set
	for i := 0; i < 5; i++ {
		a, b, c, d := b64URLValue[s[4*i]], b64URLValue[s[4*i+1]], b64URLValue[s[4*i+2]], b64URLValue[s[4*i+3]]
		bad |= a | b | c | d
		v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6 | uint32(d)
		id[3*i], id[3*i+1], id[3*i+2] = byte(v>>16), byte(v>>8), byte(v)
	}
	a, b := b64URLValue[s[20]], b64URLValue[s[21]]
	bad |= a | b
	id[15] = a<<2 | b>>4
	return id, bad&0x80 == 0 && b&0x0f == 0 // 132 bits: the last 4 must be zero
}

// parseGrantID decodes a grant id as the server makes them: 16 bytes as 26 characters of
// lowercase unpadded base32. Only the canonical text decodes (the 2 unused bits must be zero).
func parseGrantID[T string | []byte](s T) (id16, bool) {
	var id id16
	if len(s) != 26 {
		return id, false
	}
	var bad byte
	for i := 0; i < 3; i++ {
		var v uint64
		for j := 0; j < 8; j++ {
			c := b32LowValue[s[8*i+j]]
			bad |= c
			v = v<<5 | uint64(c&0x1f)
		}
		id[5*i], id[5*i+1], id[5*i+2], id[5*i+3], id[5*i+4] = byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	a, b := b32LowValue[s[24]], b32LowValue[s[25]]
	bad |= a | b
	id[15] = a<<3 | b>>2
	return id, bad&0x80 == 0 && b&0x03 == 0 // 130 bits: the last 2 must be zero
}
