// Command k8s is a multi-call binary holding the upstream Kubernetes
// components that runner's development cluster needs, so that they are
// compiled and linked once.
//
// The component is chosen by the name the binary is called by (argv[0], for
// example through a symlink named "kubelet") or, when called as "k8s", by the
// first argument:
//
//	k8s kube-apiserver --etcd-servers=...
//	kubectl get nodes            (symlink kubectl -> k8s)
//
// Each process runs exactly one component: feature gates, klog flags and
// metrics registries are process-global.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	_ "time/tzdata" // CronJob time zones (as upstream's apiserver and controller-manager)

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric
	kubectl "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

// commands maps a component name to a function running it with os.Args
// already set to [name, args...]; it returns the process exit code.
var commands = map[string]func() int{
	"kube-apiserver": func() int { return cli.Run(apiserver.NewAPIServerCommand()) },
	"kube-controller-manager": func() int {
		return cli.Run(controllermanager.NewControllerManagerCommand())
	},
	"kube-scheduler": func() int { return cli.Run(scheduler.NewSchedulerCommand()) },
	"kubelet":        func() int { return cli.Run(kubelet.NewKubeletCommand()) },
	"kube-proxy":     func() int { return cli.Run(proxy.NewProxyCommand()) },
	"kubectl": func() int {
		if err := cli.RunNoErrOutput(kubectl.NewDefaultKubectlCommand()); err != nil {
			kubectlutil.CheckErr(err) // prints the error and exits non-zero
		}
		return 0
	},
	"etcd": func() int {
		etcdmain.Main(os.Args) // exits by itself on error
		return 0
	},
	// Helpers written for this harness (see the other files of this package).
	"hostpath-provisioner": runProvisioner,
	"push-image":           runPushImage,
	"cri-cleanup":          runCRICleanup,
	"version":              func() int { fmt.Println(version()); return 0 },
}

func main() {
	name := filepath.Base(os.Args[0])
	if _, ok := commands[name]; !ok {
		// Called as "k8s <component> ...": shift the component name into argv[0].
		if len(os.Args) < 2 || commands[os.Args[1]] == nil {
			usage()
			os.Exit(2)
		}
		name = os.Args[1]
		os.Args = os.Args[1:]
	}
	os.Exit(commands[name]())
}

func usage() {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "usage: k8s COMPONENT [ARGS...]  (or call through a symlink named COMPONENT)\ncomponents: %s\n",
		strings.Join(names, ", "))
}
