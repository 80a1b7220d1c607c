package ids

import (
	"testing"

	"github.com/berth-cri/berth/errdefs"
)

func TestNewIsValidAndUnique(t *testing.T) {
	a, b := New(), New()
	if !Valid(a) || !Valid(b) || a == b {
		t.Fatalf("New: %q %q", a, b)
	}
	for _, bad := range []string{"", a[:63], a + "0", "../" + a[3:], "ABCDEF" + a[6:]} {
		if Valid(bad) {
			t.Errorf("Valid(%q) = true", bad)
		}
	}
}

func TestLookup(t *testing.T) {
	m := map[string]int{
		"abc1" + New()[4:]: 1,
		"abc2" + New()[4:]: 2,
		"ffff" + New()[4:]: 3, // hidden from prefix lookups
	}
	var full3 string
	for id, v := range m {
		if v == 3 {
			full3 = id
		}
	}
	visible := func(v int) bool { return v != 3 }
	for _, tc := range []struct {
		ref  string
		want int
		kind errdefs.Kind
	}{
		{"abc1", 1, 0},
		{"abc2", 2, 0},
		{"abc", 0, errdefs.KindInvalid},
		{"", 0, errdefs.KindInvalid},
		{"0000", 0, errdefs.KindNotFound},
		{"ffff", 0, errdefs.KindNotFound},
		{full3, 3, 0},
		{"../etc", 0, errdefs.KindNotFound},
	} {
		got, err := Lookup(m, tc.ref, "thing", visible)
		if tc.kind != 0 {
			if errdefs.KindOf(err) != tc.kind {
				t.Errorf("Lookup(%q): %v, want kind %v", tc.ref, err, tc.kind)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Lookup(%q) = %d, %v; want %d", tc.ref, got, err, tc.want)
		}
	}
}
