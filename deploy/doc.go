// Package deploy holds the deployment files of ztlog and no code: the
// Kubernetes manifests (kubernetes/), the systemd unit (systemd/) and the
// image's passwd/group (image/; the Containerfile is at the repository
// root, where `make image` and operators look for it).
//
// Its tests check those files against what they deploy, next to them:
//
//   - image_test.go builds the image (`make image`), checks its binaries are
//     static, that it has no shell and runs as user 65532, starts `ztlog
//     dev` in it with podman and gets an allow from `zt decide` on the host;
//   - kubernetes_test.go decodes every manifest strictly against the
//     k8s.io/api types and checks the wiring against the binaries' flags;
//   - systemd_test.go runs `systemd-analyze verify` on the unit.
package deploy
