from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
size = comm.Get_size()

if rank == 0:
    print("Master process receiving results...\n")
    for i in range(1, size):
        message = comm.recv(source=i)
        print(f"Received from process {message['rank']}:")
        print(f"  Assigned Task: Data Chunk {message['task']}")
        print(f"  Computed Sum: {message['result']}\n")
else:
    task_number = rank
    numbers = list(range(1, rank * 10 + 1))
    computed_sum = sum(numbers)

    message = {
        "rank": rank,
        "task": task_number,
        "result": computed_sum
    }

    comm.send(message, dest=0)
