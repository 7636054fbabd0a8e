// Command etcd wraps etcdmain so etcd can be built from the Go module proxy:
// the root etcd module carries replace lines, which `go install` refuses.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
