package server

import "context"

// imageService is the ImageService's state. (Stub until the image area lands.)
type imageService struct{}

func (s *Server) initImages(ctx context.Context) error { return nil }

func (i *imageService) close() error { return nil }
