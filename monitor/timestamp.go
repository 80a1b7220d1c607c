package monitor

import "time"

// appendTimestamp appends t in UTC as RFC 3339 with nanoseconds never
// trimmed (time.RFC3339Nano drops trailing zeros), so every record has the
// same width: 2016-10-06T00:17:09.669794202Z. It is
// t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000000Z07:00") without
// the layout interpreter and the time zone loading, which drag in most of
// package time's code.
func appendTimestamp(b []byte, t time.Time) []byte {
	secs := t.Unix()
	days, rem := secs/86400, secs%86400
	if rem < 0 {
		days, rem = days-1, rem+86400
	}
	year, month, day := civilDate(days)
	b = appendDigits(b, int(year), 4)
	b = append(b, '-')
	b = appendDigits(b, month, 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, int(rem/3600), 2)
	b = append(b, ':')
	b = appendDigits(b, int(rem/60%60), 2)
	b = append(b, ':')
	b = appendDigits(b, int(rem%60), 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond(), 9)
	return append(b, 'Z')
}

// civilDate is the proleptic Gregorian date days after 1970-01-01 (the
// well-known era algorithm: 400-year eras of 146097 days, years counted
// from March so the leap day comes last). Time.Date would do, but it
// links the local time zone's loading, a good part of package time.
func civilDate(days int64) (year int64, month, day int) {
	z := days + 719468 // days since 0000-03-01
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097                                  // [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // [0, 399]
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // [0, 365]
	mp := (5*doy + 2) / 153                                // [0, 11], March = 0
	day = int(doy - (153*mp+2)/5 + 1)
	month = int(mp + 3)
	if month > 12 {
		month -= 12
	}
	year = yoe + era*400
	if month <= 2 {
		year++
	}
	return year, month, day
}

// appendDigits appends v (0 <= v; a larger year just gets more digits)
// zero-padded to width digits.
func appendDigits(b []byte, v, width int) []byte {
	var buf [20]byte
	i := len(buf)
	for v >= 10 || width > 1 {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		width--
	}
	i--
	buf[i] = byte('0' + v)
	return append(b, buf[i:]...)
}
