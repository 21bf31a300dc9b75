package main

// A minimal dynamic provisioner for single-node development clusters: for
// every pending PersistentVolumeClaim of a StorageClass whose provisioner is
// ours it creates a hostPath PersistentVolume, pre-bound to the claim, backed
// by a new directory under --base-dir; when such a volume is released and its
// reclaim policy is Delete it removes the directory and the volume.
//
// It is the same protocol as any external provisioner (kube-controller-manager's
// PV controller does the binding), reduced to what one node needs.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

const provisionedByAnnotation = "pv.kubernetes.io/provisioned-by"

type provisioner struct {
	name    string
	baseDir string
	client  kubernetes.Interface
	classes func(name string) (*storagev1.StorageClass, error)
	work    chan func()
}

func runProvisioner() int {
	fs := flag.NewFlagSet("hostpath-provisioner", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the cluster")
	baseDir := fs.String("base-dir", "/var/lib/runner-cluster/volumes", "directory holding the volumes")
	name := fs.String("provisioner-name", "runner.local/hostpath", "provisioner name StorageClasses refer to")
	_ = fs.Parse(os.Args[1:])

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		klog.Errorf("kubeconfig: %v", err)
		return 1
	}
	base, err := filepath.Abs(*baseDir)
	if err != nil || os.MkdirAll(base, 0o755) != nil {
		klog.Errorf("base dir %q unusable: %v", *baseDir, err)
		return 1
	}
	p := &provisioner{
		name:    *name,
		baseDir: base,
		client:  kubernetes.NewForConfigOrDie(cfg),
		work:    make(chan func(), 1024),
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	factory := informers.NewSharedInformerFactory(p.client, 5*time.Minute)
	classLister := factory.Storage().V1().StorageClasses().Lister()
	p.classes = classLister.Get
	// Event handlers only queue work; a single worker runs it, so that the
	// reconcile functions never race with each other.
	onClaim := func(obj interface{}) {
		if pvc, ok := obj.(*v1.PersistentVolumeClaim); ok {
			p.work <- func() { p.provision(ctx, pvc) }
		}
	}
	onVolume := func(obj interface{}) {
		if pv, ok := obj.(*v1.PersistentVolume); ok {
			p.work <- func() { p.reclaim(ctx, pv) }
		}
	}
	_, _ = factory.Core().V1().PersistentVolumeClaims().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    onClaim,
		UpdateFunc: func(_, obj interface{}) { onClaim(obj) },
	})
	_, _ = factory.Core().V1().PersistentVolumes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    onVolume,
		UpdateFunc: func(_, obj interface{}) { onVolume(obj) },
	})
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	klog.Infof("hostpath-provisioner %q serving volumes under %s", p.name, p.baseDir)
	for {
		select {
		case <-ctx.Done():
			return 0
		case f := <-p.work:
			f()
		}
	}
}

// provision creates the volume for a pending claim of one of our classes.
func (p *provisioner) provision(ctx context.Context, pvc *v1.PersistentVolumeClaim) {
	if pvc.Status.Phase != v1.ClaimPending || pvc.Spec.VolumeName != "" || pvc.DeletionTimestamp != nil {
		return
	}
	if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName == "" {
		return
	}
	class, err := p.classes(*pvc.Spec.StorageClassName)
	if err != nil || class.Provisioner != p.name {
		return
	}
	pvName := "pvc-" + string(pvc.UID)
	dir := filepath.Join(p.baseDir, fmt.Sprintf("%s_%s_%s", pvc.Namespace, pvc.Name, pvc.UID))
	if err := os.MkdirAll(dir, 0o777); err != nil {
		klog.Errorf("claim %s/%s: %v", pvc.Namespace, pvc.Name, err)
		return
	}
	// Any user id in a pod may write the volume (umask would narrow MkdirAll).
	_ = os.Chmod(dir, 0o777)

	reclaim := v1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	capacity := pvc.Spec.Resources.Requests[v1.ResourceStorage]
	dirOrCreate := v1.HostPathDirectoryOrCreate
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        pvName,
			Annotations: map[string]string{provisionedByAnnotation: p.name},
		},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: capacity},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              class.Name,
			MountOptions:                  class.MountOptions,
			VolumeMode:                    pvc.Spec.VolumeMode,
			ClaimRef: &v1.ObjectReference{
				Kind:       "PersistentVolumeClaim",
				APIVersion: "v1",
				Namespace:  pvc.Namespace,
				Name:       pvc.Name,
				UID:        pvc.UID,
			},
			PersistentVolumeSource: v1.PersistentVolumeSource{
				HostPath: &v1.HostPathVolumeSource{Path: dir, Type: &dirOrCreate},
			},
		},
	}
	_, err = p.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	switch {
	case err == nil:
		klog.Infof("claim %s/%s: created volume %s at %s", pvc.Namespace, pvc.Name, pvName, dir)
	case apierrors.IsAlreadyExists(err):
	default:
		klog.Errorf("claim %s/%s: creating volume: %v", pvc.Namespace, pvc.Name, err)
	}
}

// reclaim deletes a released volume of ours whose reclaim policy is Delete.
func (p *provisioner) reclaim(ctx context.Context, pv *v1.PersistentVolume) {
	if pv.Annotations[provisionedByAnnotation] != p.name || pv.DeletionTimestamp != nil {
		return
	}
	if pv.Status.Phase != v1.VolumeReleased || pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimDelete {
		return
	}
	if hp := pv.Spec.HostPath; hp != nil && strings.HasPrefix(hp.Path, p.baseDir+string(filepath.Separator)) {
		if err := os.RemoveAll(hp.Path); err != nil {
			klog.Errorf("volume %s: removing %s: %v", pv.Name, hp.Path, err)
			return
		}
	}
	err := p.client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		klog.Errorf("volume %s: deleting: %v", pv.Name, err)
		return
	}
	klog.Infof("volume %s: released, deleted", pv.Name)
}
