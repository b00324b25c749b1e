"""What the tests share: servers, clients, processes, the cluster harness, the layout reader."""
