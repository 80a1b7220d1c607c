package server

import "context"

// containerService is the container state. (Stub until the container area lands.)
type containerService struct{}

func (s *Server) initContainers(ctx context.Context) error { return nil }

func (c *containerService) close() error { return nil }

func (c *containerService) count() int { return 0 }

// stopPodContainers stops every container of the pod (StopPodSandbox).
func (c *containerService) stopPodContainers(ctx context.Context, podID string) error { return nil }

// removePodContainers removes every container of the pod (RemovePodSandbox).
func (c *containerService) removePodContainers(ctx context.Context, podID string) error { return nil }
