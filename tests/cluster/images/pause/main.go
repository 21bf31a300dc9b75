// Command pause is the pod sandbox ("infra") container of the development
// cluster: as PID 1 of the pod it holds the pod's namespaces, never exits by
// itself, reaps the zombies re-parented to it, and exits 0 on SIGINT/SIGTERM.
// Built static (CGO_ENABLED=0) into a FROM-scratch image by build.sh.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for { // reap every exited child
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
