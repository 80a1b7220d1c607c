package main

// `berth-runner start ID` has little to do: read the container's state,
// check that it is created, and open and read the exec fifo, which lets the
// container's init exec the user's process. Most of its cost is starting
// the Go runtime and this binary's packages (about 15 ms of the ~20 ms it
// takes on a 2-core VM, where it is on the path of every CRI
// StartContainer), so startfast.c does that work in a C constructor that
// runs before the runtime and exits, when the state is exactly the
// expected one. Everything else (other commands and flags, errors, paused,
// stopped or running containers) falls through to the Go program, which
// libcontainer's Load, Status and Exec serve as before. The environment
// variable BERTH_RUNNER_NO_FAST_START turns the fast path off.

import "C"
