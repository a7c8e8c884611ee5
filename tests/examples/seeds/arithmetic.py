from mpi4py import MPI
import sys

# Initialize MPI
comm = MPI.COMM_WORLD
rank = comm.Get_rank()
size = comm.Get_size()

operations = ["*", "/", "+", "-"]

if rank == 0:
    # --- MASTER PROCESS ---
    print(f"\n{' WORKER ID ':<15} | {' OPERATION ':<20} | {' OUTPUT ':<15}")
    print(f"{'':=<56}")

    for i in range(1, size):
        data = comm.recv(source=i)

        p_id = f"Process {data['rank']}"
        task = data['task']
        res = f"{data['result']:.2f}" if isinstance(data['result'], float) else data['result']

        print(f"{p_id:<15} | {task:<20} | {res:<15}")

    print(f"{'':=<56}")
    print(f"Master: Received data from {size-1} processes.\n")

else:
    # --- WORKER PROCESS ---
    op = operations[rank % len(operations)]
    val_a = rank * 100
    val_b = 5

    if op == "+": result = val_a + val_b
    elif op == "-": result = val_a - val_b
    elif op == "/": result = val_a / val_b
    else: result = val_a * val_b

    # Send result package
    payload = {"rank": rank, "task": f"{val_a} {op} {val_b}", "result": result}
    comm.send(payload, dest=0)
