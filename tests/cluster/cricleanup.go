package main

// cri-cleanup stops and removes every pod sandbox of a CRI runtime, so that
// the runtime tears down the sandboxes' networks through CNI (veth pairs,
// IP leases, masquerade rules) before the cluster is stopped. Used by down.sh
// after the kubelet is stopped.
//
//	k8s cri-cleanup --endpoint unix:///run/runner-cluster/containerd.sock

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	componentversion "k8s.io/component-base/version"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func runCRICleanup() int {
	fs := flag.NewFlagSet("cri-cleanup", flag.ExitOnError)
	endpoint := fs.String("endpoint", "unix:///run/runner-cluster/containerd.sock", "CRI endpoint")
	timeout := fs.Duration("timeout", 60*time.Second, "overall time limit")
	_ = fs.Parse(os.Args[1:])

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	conn, err := grpc.NewClient(*endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(os.Stderr, "cri-cleanup: %v\n", err)
		return 1
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	list, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "cri-cleanup: listing pod sandboxes: %v\n", err)
		return 1
	}
	failed := 0
	for _, sb := range list.Items {
		name := sb.GetMetadata().GetNamespace() + "/" + sb.GetMetadata().GetName()
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			fmt.Fprintf(os.Stderr, "cri-cleanup: stopping %s: %v\n", name, err)
			failed++
			continue
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			fmt.Fprintf(os.Stderr, "cri-cleanup: removing %s: %v\n", name, err)
			failed++
		}
	}
	fmt.Printf("cri-cleanup: removed %d of %d pod sandboxes\n", len(list.Items)-failed, len(list.Items))
	if failed > 0 {
		return 1
	}
	return 0
}

func version() string { return componentversion.Get().GitVersion }
