package main

import (
	"maps"
	"strings"
	"testing"
)

func TestDumpRowCounterCountsTheTuplesOfEachTablesInserts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		dump    string
		want    rowCounts
		wantErr string
	}{
		{
			name: "extended inserts over several statements, and an empty table",
			dump: "-- MariaDB dump\n/*!40101 SET NAMES utf8mb4 */;\nCREATE TABLE `items` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n);\n" +
				"LOCK TABLES `items` WRITE;\nINSERT INTO `items` VALUES (1,1),(2,2),(3,3);\nINSERT INTO `items` VALUES (4,4);\nINSERT INTO `items` VALUES\n(5,5),\n(6,6);\nUNLOCK TABLES;\n" +
				"CREATE TABLE `empty` (\n  `n` varchar(10)\n);\n",
			want: rowCounts{"items": 6, "empty": 0},
		},
		{
			name: "parentheses, semicolons, quotes and escapes inside values",
			dump: "CREATE TABLE `t` (`s` text);\nINSERT INTO `t` VALUES (1,'a),(b;'),(2,'it\\'s (x)'),(3,'dou''ble),('),(4,\"q\\\\\"),(5,NULL),(6,'\\\\');\n" +
				"INSERT INTO `t` VALUES (7,'line\\nbreak ( ;\\n');\n",
			want: rowCounts{"t": 7},
		},
		{
			name: "a name with a backquote, and a comment that looks like an insert",
			dump: "CREATE TABLE `we``ird` (`a` int);\n-- INSERT INTO `we``ird` VALUES (9);\nINSERT INTO `we``ird` VALUES (1),(2);\n",
			want: rowCounts{"we`ird": 2},
		},
		{
			name:    "an insert with a column list is refused, not miscounted",
			dump:    "CREATE TABLE `t` (`a` int);\nINSERT INTO `t` (`a`) VALUES (1);\n",
			wantErr: "cannot read",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Whole, then in pieces of every size up to 7 bytes: a write
			// may end anywhere, inside a name, a string or an escape.
			for size := 0; size <= 7; size++ {
				d := newDumpRowCounter()
				if size == 0 {
					_, _ = d.Write([]byte(tc.dump))
				} else {
					for s := tc.dump; s != ""; {
						n := min(size, len(s))
						_, _ = d.Write([]byte(s[:n]))
						s = s[n:]
					}
				}
				if tc.wantErr != "" {
					if d.err == nil || !strings.Contains(d.err.Error(), tc.wantErr) {
						t.Fatalf("pieces of %d: err %v, want %q", size, d.err, tc.wantErr)
					}
					continue
				}
				if d.err != nil || !maps.Equal(d.rows, tc.want) {
					t.Fatalf("pieces of %d: %v (err %v), want %v", size, d.rows, d.err, tc.want)
				}
			}
		})
	}
}
