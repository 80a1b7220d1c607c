package server

import (
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// pageBytes bounds one streamed message, a quarter of the 4 MiB clients
// accept by default, so a node with thousands of objects streams them in
// pages where one List message would be refused.
const pageBytes = 1 << 20

// sendPages sends items in order, in pages of at most pageBytes (or one
// item, if one alone is larger). Nothing is sent for no items.
func sendPages[T proto.Message](items []T, send func([]T) error) error {
	var page []T
	size := 0
	for _, it := range items {
		n := proto.Size(it)
		if len(page) > 0 && size+n > pageBytes {
			if err := send(page); err != nil {
				return err
			}
			page, size = nil, 0
		}
		page = append(page, it)
		size += n
	}
	if len(page) > 0 {
		return send(page)
	}
	return nil
}

// StreamPodSandboxes is ListPodSandbox, in pages.
func (s *Server) StreamPodSandboxes(req *runtimeapi.StreamPodSandboxesRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxesResponse]) error {
	resp, err := s.ListPodSandbox(stream.Context(), &runtimeapi.ListPodSandboxRequest{Filter: req.GetFilter()})
	if err != nil {
		return err
	}
	return sendPages(resp.Items, func(p []*runtimeapi.PodSandbox) error {
		return stream.Send(&runtimeapi.StreamPodSandboxesResponse{PodSandboxes: p})
	})
}

// StreamContainers is ListContainers, in pages.
func (s *Server) StreamContainers(req *runtimeapi.StreamContainersRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamContainersResponse]) error {
	resp, err := s.ListContainers(stream.Context(), &runtimeapi.ListContainersRequest{Filter: req.GetFilter()})
	if err != nil {
		return err
	}
	return sendPages(resp.Containers, func(p []*runtimeapi.Container) error {
		return stream.Send(&runtimeapi.StreamContainersResponse{Containers: p})
	})
}

// StreamImages is ListImages, in pages.
func (s *Server) StreamImages(req *runtimeapi.StreamImagesRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamImagesResponse]) error {
	resp, err := s.ListImages(stream.Context(), &runtimeapi.ListImagesRequest{Filter: req.GetFilter()})
	if err != nil {
		return err
	}
	return sendPages(resp.Images, func(p []*runtimeapi.Image) error {
		return stream.Send(&runtimeapi.StreamImagesResponse{Images: p})
	})
}

// StreamContainerStats is ListContainerStats, in pages.
func (s *Server) StreamContainerStats(req *runtimeapi.StreamContainerStatsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamContainerStatsResponse]) error {
	out, err := s.listContainerStats(stream.Context(), req.GetFilter())
	if err != nil {
		return err
	}
	return sendPages(out, func(p []*runtimeapi.ContainerStats) error {
		return stream.Send(&runtimeapi.StreamContainerStatsResponse{ContainerStats: p})
	})
}

// StreamPodSandboxStats is ListPodSandboxStats, in pages.
func (s *Server) StreamPodSandboxStats(req *runtimeapi.StreamPodSandboxStatsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxStatsResponse]) error {
	out, err := s.listPodStats(stream.Context(), req.GetFilter())
	if err != nil {
		return err
	}
	return sendPages(out, func(p []*runtimeapi.PodSandboxStats) error {
		return stream.Send(&runtimeapi.StreamPodSandboxStatsResponse{PodSandboxStats: p})
	})
}

// StreamPodSandboxMetrics is ListPodSandboxMetrics, in pages; each pod is
// read as its page fills, so the node's metrics are never all in memory.
func (s *Server) StreamPodSandboxMetrics(req *runtimeapi.StreamPodSandboxMetricsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxMetricsResponse]) error {
	var page []*runtimeapi.PodSandboxMetrics
	size := 0
	flush := func() error {
		if len(page) == 0 {
			return nil
		}
		err := stream.Send(&runtimeapi.StreamPodSandboxMetricsResponse{PodSandboxMetrics: page})
		page, size = nil, 0
		return err
	}
	err := s.eachPodMetrics(stream.Context(), func(pm *runtimeapi.PodSandboxMetrics) error {
		n := proto.Size(pm)
		if len(page) > 0 && size+n > pageBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		page = append(page, pm)
		size += n
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}
