package command

import (
	"math"
	"testing"
)

func TestParseIntAsRedis(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1": 1, "-1": -1, "10": 10, "9223372036854775807": math.MaxInt64,
		"-9223372036854775808": math.MinInt64,
	} {
		if got, ok := ParseInt([]byte(in)); !ok || got != want {
			t.Errorf("ParseInt(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-", "+1", "01", "-0", "00", " 1", "1 ", "1.0", "1e3", "0x10",
		"9223372036854775808", "-9223372036854775809", "18446744073709551616", "99999999999999999999", "--1", "1_000"} {
		if got, ok := ParseInt([]byte(in)); ok {
			t.Errorf("ParseInt(%q) = %d, true; Redis refuses it", in, got)
		}
	}
}
