// Command stamp prints the version line; the tests build it with -ldflags.
package main

import (
	"fmt"

	"github.com/redraft/redraft/internal/version"
)

func main() { fmt.Println(version.String()) }
