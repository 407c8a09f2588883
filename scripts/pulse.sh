#!/usr/bin/env bash
# A private PulseAudio server with a virtual microphone, for the live tests:
#
#   scripts/pulse.sh start    # null sink "vmic" (16 kHz mono); its monitor is the default source
#   scripts/pulse.sh stop
#   scripts/pulse.sh status
#
# Whatever is played into the sink (`paplay --device=vmic clip.wav`) is what a
# program recording from the default input (ALSA "default" -> PulseAudio) hears.
# Both subcommands are idempotent. Works as root (pulseaudio warns, then runs as a
# per-user server) and without XDG_RUNTIME_DIR or D-Bus.
#
# A null sink that nobody plays into idles with a 2 s render block, so a recorder
# that connects waits up to 2 s for its first samples (parec shows the same). start
# therefore also runs a "keeper": pacat playing silence into the sink at 20 ms
# latency, which keeps the sink rendering in small blocks like a real microphone.
# Mixing in zeros leaves what paplay plays unchanged.
set -euo pipefail

SINK=vmic
RATE=16000
LOG=${PULSE_LOG:-${TMPDIR:-/tmp}/spikeword-pulse.log}
KEEPER_PID=${TMPDIR:-/tmp}/spikeword-pulse-keeper.pid

need() {
    command -v "$1" >/dev/null 2>&1 || { echo "pulse.sh: '$1' not found (apt-get install pulseaudio pulseaudio-utils libasound2-plugins)" >&2; exit 2; }
}

answers() { pactl info >/dev/null 2>&1; }

has_sink() { pactl list short sinks 2>/dev/null | awk '{print $2}' | grep -qx "$SINK"; }

wait_until() {
    # wait_until SECONDS CMD...: polls CMD every 0.1 s.
    local n=$(( $1 * 10 )); shift
    while (( n-- > 0 )); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

not_running() { ! pulseaudio --check 2>/dev/null; }

# Blocks until the sink has finished its current (up to 2 s) idle block, after
# which it renders at the keeper's latency: the first samples a recorder gets mark it.
wake_sink() {
    timeout 4 parec --device="$SINK.monitor" --latency-msec=20 --raw --format=s16le --rate="$RATE" --channels=1 2>/dev/null \
        | head -c 64 >/dev/null || true
}

keeper_alive() {
    local pid
    [[ -f $KEEPER_PID ]] && pid=$(<"$KEEPER_PID") && [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null \
        && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "pacat.*--device=$SINK"
}

start_keeper() {
    keeper_alive && return 0
    command -v pacat >/dev/null 2>&1 || { echo "pulse.sh: no pacat; recorders may wait up to 2 s for the sink to wake" >&2; return 0; }
    setsid pacat --playback --device="$SINK" --latency-msec=20 --raw --format=s16le --rate="$RATE" --channels=1 \
        --client-name=spikeword-keeper </dev/zero >>"$LOG" 2>&1 &
    echo $! >"$KEEPER_PID"
}

stop_keeper() {
    if keeper_alive; then
        kill "$(<"$KEEPER_PID")" 2>/dev/null || true
    fi
    rm -f "$KEEPER_PID"
}

start() {
    need pulseaudio; need pactl
    if ! answers; then
        # -n: no default.pa (so no D-Bus, udev or hardware modules); the sink and the
        # native protocol socket are all we need. As root pulseaudio only prints
        # "This program is not intended to be run as root" and carries on.
        pulseaudio --daemonize=yes --system=false --exit-idle-time=-1 --disallow-exit -n \
            --load="module-null-sink sink_name=$SINK rate=$RATE channels=1" \
            --load=module-native-protocol-unix \
            --log-target=stderr >>"$LOG" 2>&1 \
            || { echo "pulse.sh: pulseaudio failed to start; see $LOG" >&2; tail -n 5 "$LOG" >&2 || true; exit 1; }
        wait_until 10 answers || { echo "pulse.sh: server started but 'pactl info' does not answer; see $LOG" >&2; exit 1; }
    fi
    # A server that was already running (ours from an earlier start, or another) may
    # lack the sink.
    if ! has_sink; then
        pactl load-module module-null-sink sink_name="$SINK" rate="$RATE" channels=1 >/dev/null
    fi
    pactl set-default-source "$SINK.monitor"
    start_keeper
    wait_until 5 answers
    keeper_alive && wake_sink
    echo "pulseaudio up: $(pactl info | sed -n 's/^Server String: //p'), default source $(pactl get-default-source 2>/dev/null || echo "$SINK.monitor")"
}

stop() {
    need pulseaudio
    stop_keeper
    if pulseaudio --check 2>/dev/null; then
        # --kill uses the server's own pid file: only the server this user started.
        pulseaudio --kill 2>/dev/null || true
        if ! wait_until 5 not_running; then
            echo "pulse.sh: pulseaudio did not stop" >&2
            exit 1
        fi
        echo "pulseaudio stopped"
    else
        echo "pulseaudio not running"
    fi
}

status() {
    if answers; then
        pactl info | grep -E '^(Server String|Default Sink|Default Source):'
        pactl list short sources
    else
        echo "no PulseAudio server answers"
        exit 1
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    restart) stop; start ;;
    *) echo "usage: $0 start|stop|status|restart" >&2; exit 2 ;;
esac
