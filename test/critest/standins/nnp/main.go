// Command nnp stands in for the helper of critest's nonewprivs image: a
// setuid-root program that prints the effective uid it runs with, so a
// spec can tell whether no_new_privs stopped the setuid bit.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("Effective uid: %d\n", os.Geteuid())
}
