package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/utils"
)

var startCommand = &command{
	name:     "start",
	usage:    "executes the user defined process in a created container",
	argsHelp: "<container-id>",
	minArgs:  1,
	maxArgs:  1,
	run: func(inv *invocation) error {
		c, err := loadContainer(inv)
		if err != nil {
			return err
		}
		status, err := c.Status()
		if err != nil {
			return err
		}
		switch status {
		case libcontainer.Created:
			return c.Exec()
		case libcontainer.Stopped:
			return errors.New("cannot start a container that has stopped")
		case libcontainer.Running:
			return errors.New("cannot start an already running container")
		default:
			return fmt.Errorf("cannot start a container in the %s state", status)
		}
	},
}

// containerState is the runtime-spec state, plus runc's "created" and
// "owner" fields that runc's users read.
type containerState struct {
	Version        string            `json:"ociVersion"`
	ID             string            `json:"id"`
	InitProcessPid int               `json:"pid"`
	Status         string            `json:"status"`
	Bundle         string            `json:"bundle"`
	Rootfs         string            `json:"rootfs"`
	Created        time.Time         `json:"created"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	Owner          string            `json:"owner"`
}

func stateOf(c *libcontainer.Container) (*containerState, error) {
	status, err := c.Status()
	if err != nil {
		return nil, err
	}
	st, err := c.State()
	if err != nil {
		return nil, err
	}
	pid := st.BaseState.InitProcessPid
	if status == libcontainer.Stopped {
		pid = 0
	}
	bundle, annotations := utils.Annotations(st.Config.Labels)
	return &containerState{
		Version:        st.BaseState.Config.Version,
		ID:             st.BaseState.ID,
		InitProcessPid: pid,
		Status:         status.String(),
		Bundle:         bundle,
		Rootfs:         st.BaseState.Config.Rootfs,
		Created:        st.BaseState.Created,
		Annotations:    annotations,
	}, nil
}

var stateCommand = &command{
	name:     "state",
	usage:    "output the state of a container",
	argsHelp: "<container-id>",
	minArgs:  1,
	maxArgs:  1,
	run: func(inv *invocation) error {
		c, err := loadContainer(inv)
		if err != nil {
			return err
		}
		cs, err := stateOf(c)
		if err != nil {
			return err
		}
		data, err := json.MarshalIndent(cs, "", "  ")
		if err != nil {
			return err
		}
		_, err = inv.app.Stdout.Write(data)
		return err
	},
}

var pauseCommand = &command{
	name:     "pause",
	usage:    "pause suspends all processes inside the container",
	argsHelp: "<container-id>",
	minArgs:  1,
	maxArgs:  1,
	run: func(inv *invocation) error {
		c, err := loadContainer(inv)
		if err != nil {
			return err
		}
		return c.Pause()
	},
}

var resumeCommand = &command{
	name:     "resume",
	usage:    "resumes all processes that have been previously paused",
	argsHelp: "<container-id>",
	minArgs:  1,
	maxArgs:  1,
	run: func(inv *invocation) error {
		c, err := loadContainer(inv)
		if err != nil {
			return err
		}
		return c.Resume()
	},
}
