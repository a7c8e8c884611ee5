from mpi4py import MPI

# Initialize MPI
comm = MPI.COMM_WORLD
rank = comm.Get_rank()
size = comm.Get_size()

if rank == 0:
    # Master process
    print(f"Master process started. Expecting {size-1} worker messages...\n")

    for i in range(1, size):
        message = comm.recv(source=i)
        print(
            f"Received from process {i} | "
            f"Task: {message['task']} | "
            f"Result: {message['result']}"
        )

    print("\nAll worker results received.")

else:
    # Worker processes
    data_chunk = list(range(rank * 10, rank * 10 + 10))
    computed_sum = sum(data_chunk)

    message = {
        "rank": rank,
        "task": f"Data chunk {rank}",
        "result": computed_sum
    }

    comm.send(message, dest=0)
