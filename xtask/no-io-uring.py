#!/usr/bin/env python3
"""Runs a command with io_uring refused: io_uring_setup, io_uring_enter and io_uring_register
fail with EPERM, as under a container runtime that blocks them. Used by `cargo xtask ci` to run
omq-compio's scenario suite on compio's polling driver.

Usage: no-io-uring.py COMMAND [ARGS...]
"""
import ctypes
import os
import struct
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
BPF_LD_W_ABS = 0x00 | 0x00 | 0x20
BPF_JEQ_K = 0x05 | 0x10 | 0x00
BPF_RET_K = 0x06 | 0x00
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
EPERM = 1
# io_uring's syscall numbers are the same on every architecture (425-427).
IO_URING_SETUP, IO_URING_ENTER, IO_URING_REGISTER = 425, 426, 427
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7


def stmt(code, k):
    return struct.pack("HBBI", code, 0, 0, k)


def jump(code, k, jt, jf):
    return struct.pack("HBBI", code, jt, jf, k)


# struct seccomp_data { int nr; __u32 arch; ... }: nr at offset 0, arch at 4.
PROGRAM = [
    stmt(BPF_LD_W_ABS, 4),  # 0: arch
    jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, 2, 0),  # 1: -> 4
    jump(BPF_JEQ_K, AUDIT_ARCH_AARCH64, 1, 0),  # 2: -> 4
    stmt(BPF_RET_K, SECCOMP_RET_ALLOW),  # 3: another architecture: leave it alone
    stmt(BPF_LD_W_ABS, 0),  # 4: syscall number
    jump(BPF_JEQ_K, IO_URING_SETUP, 3, 0),  # 5: -> 9
    jump(BPF_JEQ_K, IO_URING_ENTER, 2, 0),  # 6: -> 9
    jump(BPF_JEQ_K, IO_URING_REGISTER, 1, 0),  # 7: -> 9
    stmt(BPF_RET_K, SECCOMP_RET_ALLOW),  # 8
    stmt(BPF_RET_K, SECCOMP_RET_ERRNO | EPERM),  # 9
]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    libc = ctypes.CDLL(None, use_errno=True)
    code = b"".join(PROGRAM)
    buf = ctypes.create_string_buffer(code, len(code))
    prog = SockFprog(len(PROGRAM), ctypes.cast(buf, ctypes.c_void_p))
    ulong = ctypes.c_ulong
    if libc.prctl(PR_SET_NO_NEW_PRIVS, ulong(1), ulong(0), ulong(0), ulong(0)) != 0:
        sys.exit("prctl(PR_SET_NO_NEW_PRIVS) failed: errno %d" % ctypes.get_errno())
    if libc.prctl(PR_SET_SECCOMP, ulong(SECCOMP_MODE_FILTER), ctypes.byref(prog), ulong(0), ulong(0)) != 0:
        sys.exit("prctl(PR_SET_SECCOMP) failed: errno %d" % ctypes.get_errno())
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
