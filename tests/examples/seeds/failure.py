from mpi4py import MPI
import sys

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
size = comm.Get_size()

operations = ["+", "-", "/", "*"]

if rank == 0:
    # --- MASTER PROCESS LOGIC ---
    print(f"\n{' PROCESS ID ':#^20} | {' ASSIGNED TASK ':#^20} | {' RESULT ':#^15}")
    print(f"{'':-^61}")

    for i in range(1, size):
        print(f"Master: Waiting for data from Worker {i}...")
        
        # BLOCKING RECV: The Master will hang here if a worker fails
        data = comm.recv(source=i)

        p_id = f"Worker {data['rank']}"
        task = data['task']
        res = f"{data['result']:.2f}" if isinstance(data['result'], float) else data['result']
        print(f"{p_id:<20} | {task:^20} | {res:>15}")

    print("Master: Operation Complete.")

else:
    # --- WORKER PROCESS LOGIC ---
    # FAIL PROCESS: Worker 2 crashes before sending data
    if rank == 2:
        print(f"DEBUG: Worker 2 has encountered a fatal error and is exiting...")
        sys.exit(1) 

    op = operations[rank % len(operations)]
    val_a, val_b = rank * 10, 2
    
    if op == "+": result = val_a + val_b
    elif op == "-": result = val_a - val_b
    elif op == "/": result = val_a / val_b
    else: result = val_a * val_b

    comm.send({"rank": rank, "task": f"{val_a} {op} {val_b}", "result": result}, dest=0)
