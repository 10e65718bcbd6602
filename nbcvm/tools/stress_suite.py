"""The built-in stress suite: NBC workloads over the runtime's shared state.

Each workload declares its invariant in ``check``; every one of them must
hold on a correct runtime, under any interleaving.
"""

from __future__ import annotations

from nbcvm.tools.stress import Workload

ATOMIC_COUNTER = """
.module stress
.global counter 0
.func stress i
    .local k
    push 0
    store k
top:
    push 1
    atomic_add counter
    pop
    inc k 1
    load k
    push 100
    lt
    jt top
    push 0
    ret
.end
.func check threads iterations
    load threads
    load iterations
    mul
    push 100
    mul
    gload counter
    sub
    ret
.end
"""

PING_PONG = """
.module stress
.func pong c d
    .local v ok
loop:
    load c
    push nil
    recv
    store ok
    store v
    load ok
    jf done
    load d
    load v
    push 1
    add
    push nil
    send
    jmp loop
done:
    push 0
    ret
.end
.func stress i
    .local c d t k v bad
    chan 1
    store c
    chan 1
    store d
    load c
    load d
    spawn pong 2
    store t
    push 0
    store k
    push 0
    store bad
top:
    load c
    load k
    push nil
    send
    load d
    push nil
    recv
    pop
    load k
    push 1
    add
    ne
    jf ok
    inc bad 1
ok:
    inc k 1
    load k
    push 20
    lt
    jt top
    load c
    close
    load t
    join
    pop
    load bad
    push 0
    eq
    jt fine
    push "ping-pong answer out of order"
    throw UserError
fine:
    push 0
    ret
.end
"""

FAN_IN = """
.module stress
.global ch nil
.global total 0
.global consumer nil
.func drain
    .local v ok
loop:
    gload ch
    push 10.0
    recv
    store ok
    store v
    load ok
    jf done
    load v
    atomic_add total
    pop
    jmp loop
done:
    push 0
    ret
.end
.func init
    chan 16
    gstore ch
    spawn drain 0
    gstore consumer
    push 0
    ret
.end
.func stress i
    .local k
    push 0
    store k
top:
    gload ch
    push 1
    push nil
    send
    inc k 1
    load k
    push 50
    lt
    jt top
    push 0
    ret
.end
.func check threads iterations
    gload ch
    close
    gload consumer
    join
    pop
    load threads
    load iterations
    mul
    push 50
    mul
    gload total
    sub
    ret
.end
"""

LAZY_MODULE = """
.module lazymod
.global inits 0
.global value 0
.func init
    push 1
    atomic_add inits
    pop
    push 42
    gstore value
    push 0
    ret
.end
.func get
    gload value
    ret
.end
.func count
    gload inits
    ret
.end
"""

LAZY_IMPORT = """
.module stress
.import lazymod
.global wrong 0
.func stress i
    call lazymod.get 0
    push 42
    eq
    jt ok
    push 1
    atomic_add wrong
    pop
ok:
    push 0
    ret
.end
.func check
    call lazymod.count 0
    push 1
    sub
    gload wrong
    add
    ret
.end
"""

TENSORS = """
.module stress
.import tensor
.global wrong 0
.func stress i
    .local a b c k
    push 0
    store k
top:
    push 3
    call tensor.eye 1
    load i
    tmul
    store a
    push 3
    push 3
    newlist 2
    call tensor.ones 1
    store b
    load a
    load b
    matmul
    tsum
    load i
    push 9
    mul
    tofloat
    eq
    jt ok
    push 1
    atomic_add wrong
    pop
ok:
    inc k 1
    load k
    push 10
    lt
    jt top
    push 0
    ret
.end
.func check
    gload wrong
    ret
.end
"""

LOCK_ORDER = """
.module stress
.global la nil
.global lb nil
.global plain 0
.func init
    newlock
    gstore la
    newlock
    gstore lb
    push 0
    ret
.end
.func stress i
    .local k v
    push 0
    store k
top:
    gload la
    push nil
    acquire
    gload lb
    push nil
    acquire
    gload plain
    store v
    load v
    push 1
    add
    store v
    load v
    gstore plain
    gload lb
    release
    gload la
    release
    inc k 1
    load k
    push 20
    lt
    jt top
    push 0
    ret
.end
.func check threads iterations
    load threads
    load iterations
    mul
    push 20
    mul
    gload plain
    sub
    ret
.end
"""

SUITE: dict[str, Workload] = {
    "atomic-counter": Workload("atomic-counter", ATOMIC_COUNTER, ops_per_call=100),
    "channel-ping-pong": Workload("channel-ping-pong", PING_PONG, ops_per_call=20, iterations=3),
    "channel-fan-in": Workload("channel-fan-in", FAN_IN, ops_per_call=50),
    "lazy-import": Workload("lazy-import", LAZY_IMPORT, ops_per_call=1, iterations=5,
                            extra_modules={"lazymod": LAZY_MODULE}),
    "tensor-ops": Workload("tensor-ops", TENSORS, ops_per_call=10, iterations=3),
    "lock-ordering": Workload("lock-ordering", LOCK_ORDER, ops_per_call=20, iterations=5),
}
