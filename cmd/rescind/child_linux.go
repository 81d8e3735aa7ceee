package main

import "syscall"

// childAttr makes a child the bench starts die with the bench, even when the bench is killed
// (SIGKILL leaves it no time to stop them): the kernel sends it SIGKILL when its parent dies.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
