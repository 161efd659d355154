"""Small pieces of process and socket plumbing the tests share: run a function in a forked child as another user,
read a pipe to its end, read one reply line from a socket."""

import ast
import os


def read_all(fd):
    """Everything a pipe's other end writes until it closes it (fd is closed here)."""
    data = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    os.close(fd)
    return data


def recv_line(sock):
    """What a socket sends up to its first newline (or its end): the bytes read, which may go past the line."""
    buf = b""
    while b"\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def in_child(become, fn, on_error):
    """Run become() (setgid, setuid: it changes who the process is) and then fn() in a forked child; return fn's
    result, which must survive repr() and ast.literal_eval(). An exception in the child is never raised there:
    on_error(exception) is returned instead."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            become()
            out = repr(fn())
        except Exception as e:  # report, never raise out of the child
            out = repr(on_error(e))
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    data = read_all(r)
    os.waitpid(pid, 0)
    return ast.literal_eval(data.decode())
