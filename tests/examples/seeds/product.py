
"""
Distributed Message-Passing Program with Unique Tasks
-----------------------------------------------------
Master process (rank 0):
    - Receives processed data from worker processes using comm.recv()
    - Displays the results along with the worker's rank

Worker processes (rank > 0):
    - Each worker has a unique list of 10 numbers based on its rank
    - Computes the product of its list
    - Sends both the data and the computed product to the master using comm.send()
"""

from mpi4py import MPI

# Initialize MPI communicator
comm = MPI.COMM_WORLD
rank = comm.Get_rank()   # Unique ID of each process
size = comm.Get_size()   # Total number of processes

# ---------------- MASTER PROCESS ----------------
if rank == 0:
    print("Master process started.\n")
    print(f"Total processes: {size}\n")

    # Receive results from all worker processes
    for worker_rank in range(1, size):
        # Receive message from the current worker
        data = comm.recv(source=worker_rank)
        print(f"Master received processed data from worker process {data['rank']}:")
        print(f"  Input data: {data['input_values']}")
        print(f"  Calculated product: {data['product']}\n")

# ---------------- WORKER PROCESSES ----------------
else:
    # Each worker gets a unique list of 10 numbers based on its rank
    start = (rank - 1) * 10 + 1
    end = start + 10   # exclusive
    numbers = list(range(start, end))

    # Compute the product of the numbers
    total_product = 1
    for num in numbers:
        total_product *= num

    # Prepare a message containing rank, task, and result
    message = {
        "rank": rank,
        "input_values": numbers,
        "product": total_product
    }

    # Send message to master process (rank 0)
    comm.send(message, dest=0)

    # Worker-side print removed for cleaner output
