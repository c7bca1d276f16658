/**
 * The launcher's Perl script: what `_launcher.ts` starts once per batch and speaks to over its
 * stdin and stdout (the wire is described there).
 *
 * @module
 */

/**
 * The helper. It reaps with `waitpid(WNOHANG)` after every `select()`, which a SIGCHLD
 * interrupts; the loop never blocks on one job (an `exec()` is waited for through a pipe in
 * the same `select()`), and it writes its replies once per turn.
 */
export const LAUNCHER_SCRIPT: string = String.raw`use strict;
use warnings;
use Errno qw(EINTR EAGAIN EWOULDBLOCK);
use Fcntl qw(F_GETFL F_SETFL O_NONBLOCK);

$0 = 'fanout-launcher';
# 1 on Linux, macOS and the BSDs; POSIX.pm would say so, at ~15 ms of start-up.
use constant WNOHANG => 1;
use constant CHUNK => 65536;
# The longest select() waits while jobs run (see the loop).
use constant NET_S => 0.02;

# Handlers, not 'IGNORE': exec() resets a handled signal for the job, an ignored one it would
# inherit. SIGPIPE: a write to a job that closed its stdin fails with EPIPE instead. SIGINT and
# SIGQUIT (Ctrl-C reaches the whole process group): the jobs die of them and are reported as
# they would be to a parent that spawned them itself, which decides what happens next.
$SIG{$_} = sub { } for qw(PIPE INT QUIT);
my $quit = 0;
$SIG{TERM} = sub { $quit = 1 };
my $chld = 0;
$SIG{CHLD} = sub { $chld = 1 };

open(my $null, '<', '/dev/null') or die "fanout-launcher: /dev/null: $!\n";
my %jobs;    # id => job
my %by_pid;  # pid => id, until reaped
my $requests = '';
my $replies = '';
my $eof = 0;

sub put { $replies .= pack('N', length $_[0]) . $_[0] }

sub flush {
  while (length $replies) {
    my $n = syswrite(STDOUT, $replies);
    if (!defined $n) {
      next if $! == EINTR;
      # The parent's end is closed: it is gone, and nothing is left to report to.
      shut();
    }
    substr($replies, 0, $n) = '';
  }
}

sub shut {
  kill 'TERM', keys %by_pid;
  exit 0;
}

sub close_pipes {
  my ($job, @kinds) = @_;
  for my $kind (@kinds) {
    close $job->{$kind} if defined $job->{$kind};
    $job->{$kind} = undef;
  }
  $job->{input} = '' if grep { $_ eq 'in' } @kinds;
}

sub closed_if_done {
  my ($id) = @_;
  my $job = $jobs{$id};
  return if !$job->{exited} || defined $job->{out} || defined $job->{err};
  delete $jobs{$id};
  put("C\0$id");
}

sub spawn {
  my ($id, $max, $cwd, $envn, $argvn, $has_input, $rest) = @_;
  my @fields = split /\0/, $rest, 2 * $envn + $argvn + 1;
  my $input = pop @fields;
  my @env = splice @fields, 0, 2 * $envn;
  my ($out_r, $out_w, $err_r, $err_w, $in_r, $in_w, $report_r, $report_w);
  # Perl opens every descriptor above 2 close-on-exec: none of these leaks into a job.
  pipe($out_r, $out_w) && pipe($err_r, $err_w) && pipe($report_r, $report_w) &&
    (!$has_input || pipe($in_r, $in_w))
    or return put("F\0$id\0" . ($! + 0));
  my $pid = fork();
  return put("F\0$id\0" . ($! + 0)) if !defined $pid;
  if ($pid == 0) {
    # As little as can be before exec(): every page Perl writes here is copied for the job.
    if (open(STDIN, '<&', $has_input ? $in_r : $null) && open(STDOUT, '>&', $out_w) &&
      open(STDERR, '>&', $err_w) && ($cwd eq '' || chdir substr($cwd, 1)))
    {
      while (@env) {
        my $key = shift @env;
        $ENV{$key} = shift @env;
      }
      no warnings 'exec';
      exec { $fields[0] } @fields;
    }
    syswrite($report_w, pack('N', $! + 0));
    CORE::exit(127);
  }
  close $_ for grep { defined } $out_w, $err_w, $in_r, $report_w;
  my $job = {
    pid => $pid,
    report => $report_r,
    out => $out_r,
    err => $err_r,
    in => $in_w,
    input => $input,
    at => 0,
    room => { out => $max + 1, err => $max + 1 },
    exited => 0,
  };
  $jobs{$id} = $job;
  $by_pid{$pid} = $id;
  if (defined $in_w) {
    if (length $input) {
      fcntl($in_w, F_SETFL, fcntl($in_w, F_GETFL, 0) | O_NONBLOCK);
    } else {
      close_pipes($job, 'in');
    }
  }
}

# The report pipe closes at a successful exec(), or brings the errno of the step that failed.
sub reported {
  my ($id) = @_;
  my $job = $jobs{$id};
  my ($report, $n) = ('');
  do { $n = sysread($job->{report}, $report, 4) } while (!defined $n && $! == EINTR);
  close_pipes($job, 'report');
  if (!$n) {
    return put("P\0$id\0$job->{pid}");
  }
  # Its exit (127) is reaped without a word: the parent hears of the failure only.
  delete $jobs{$id};
  $job->{failed} = 1;
  close_pipes($job, qw(out err in));
  put("F\0$id\0" . unpack('N', $report));
}

sub request {
  my ($body) = @_;
  my $type = substr($body, 0, 1);
  if ($type eq 'S') {
    my (undef, @head) = split /\0/, $body, 8;
    spawn(@head);
  } elsif ($type eq 'K') {
    my (undef, $id, $signal) = split /\0/, $body;
    my $job = $jobs{$id};
    # Only a job not reaped yet: a reaped pid may already be another process's.
    kill $signal, $job->{pid} if defined $job && !$job->{exited};
  } elsif ($type eq 'U') {
    my (undef, $id) = split /\0/, $body;
    return if !defined $jobs{$id};
    close_pipes($jobs{$id}, qw(out err));
    closed_if_done($id);
  }
}

sub read_requests {
  my $n = sysread(STDIN, $requests, CHUNK, length $requests);
  if (!defined $n) {
    return if $! == EINTR || $! == EAGAIN;
    $n = 0;
  }
  $eof = 1 if $n == 0;
  while (length($requests) >= 4) {
    my $length = unpack('N', $requests);
    last if length($requests) < 4 + $length;
    my $body = substr($requests, 4, $length);
    substr($requests, 0, 4 + $length) = '';
    request($body);
  }
}

sub reap {
  $chld = 0;
  for (;;) {
    my $pid = waitpid(-1, WNOHANG);
    last if $pid <= 0;
    my $status = $?;
    my $id = delete $by_pid{$pid};
    next if !defined $id || !defined $jobs{$id};
    my $job = $jobs{$id};
    # Dead, so its report is there to read at once.
    reported($id) if defined $job->{report};
    next if $job->{failed};
    $job->{exited} = 1;
    close_pipes($job, 'in');
    my $signal = $status & 127;
    put($signal ? "X\0$id\0\0$signal" : "X\0$id\0" . ($status >> 8) . "\0");
    closed_if_done($id);
  }
}

sub pump_output {
  my ($id, $kind) = @_;
  my $job = $jobs{$id};
  my $n = sysread($job->{$kind}, my $chunk, CHUNK);
  if (!defined $n) {
    return if $! == EINTR || $! == EAGAIN;
    $n = 0;
  }
  if ($n == 0) {
    close_pipes($job, $kind);
    return closed_if_done($id);
  }
  # Past the parent's limit (and one byte more, which tells it output was cut), the rest is
  # read and dropped, so that the job never blocks on a full pipe.
  my $room = $job->{room}{$kind};
  return if $room <= 0;
  $chunk = substr($chunk, 0, $room) if $n > $room;
  $job->{room}{$kind} -= length $chunk;
  put(($kind eq 'out' ? 'O' : 'E') . "\0$id\0" . $chunk);
}

sub pump_input {
  my ($job) = @_;
  my $left = length($job->{input}) - $job->{at};
  my $n = syswrite($job->{in}, $job->{input}, $left > CHUNK ? CHUNK : $left, $job->{at});
  if (!defined $n) {
    return if $! == EINTR || $! == EAGAIN || $! == EWOULDBLOCK;
    # EPIPE: the job closed its stdin without reading all of it. Its exit status tells.
    return close_pipes($job, 'in');
  }
  $job->{at} += $n;
  close_pipes($job, 'in') if $job->{at} >= length $job->{input};
}

binmode STDIN;
binmode STDOUT;
put("R\0$$");
for (;;) {
  flush();
  shut() if $quit || $eof;
  my ($rin, $win) = ('', '');
  my @watched;
  vec($rin, fileno(STDIN), 1) = 1;
  for my $id (keys %jobs) {
    my $job = $jobs{$id};
    # A job's output is read once it is known to have started.
    for my $kind (defined $job->{report} ? ('report') : ('out', 'err')) {
      next if !defined $job->{$kind};
      vec($rin, fileno($job->{$kind}), 1) = 1;
      push @watched, [$id, $kind, fileno($job->{$kind})];
    }
    if (defined $job->{in}) {
      vec($win, fileno($job->{in}), 1) = 1;
      push @watched, [$id, 'in', fileno($job->{in})];
    }
  }
  # Perl runs a signal handler between statements: a SIGCHLD that came while the loop was busy
  # set the flag, and this select() only polls. One that lands in the instant between that
  # check and the start of select() wakes nothing, so while jobs run select() never waits
  # longer than NET_S: no exit goes unreported.
  my $timeout = $chld ? 0 : %by_pid ? NET_S : undef;
  my $ready = select(my $rout = $rin, my $wout = $win, undef, $timeout);
  if ($ready < 0) {
    die "fanout-launcher: select: $!\n" if $! != EINTR;
    $ready = 0;
  }
  if ($ready > 0) {
    for my $w (@watched) {
      my ($id, $kind, $fd) = @$w;
      my $job = $jobs{$id};
      next if !defined $job || !defined $job->{$kind} || fileno($job->{$kind}) != $fd;
      if ($kind eq 'in') {
        pump_input($job) if vec($wout, $fd, 1);
      } elsif (vec($rout, $fd, 1)) {
        $kind eq 'report' ? reported($id) : pump_output($id, $kind);
      }
    }
    # After the jobs: a new job's pipes may reuse a descriptor just closed.
    read_requests() if vec($rout, fileno(STDIN), 1);
  }
  reap();
}
`;

/**
 * What `perl -e` runs: reads the script from stdin (8 hex digits of length, then the script),
 * so that `ps` shows a short command line, then runs it.
 */
export const BOOT = "my($l,$s)=('','');" +
  "while(length($l)<8){sysread(STDIN,$l,8-length($l),length($l))or exit 70}" +
  "$l=hex $l;while(length($s)<$l){sysread(STDIN,$s,$l-length($s),length($s))or exit 70}" +
  "eval(qq{#line 1 fanout-launcher\n$s});die $@ if $@";

/** The boot frame: the script's length as 8 hex digits, then the script (ASCII). */
export function bootBytes(): Uint8Array {
  return new TextEncoder().encode(
    LAUNCHER_SCRIPT.length.toString(16).padStart(8, "0") + LAUNCHER_SCRIPT,
  );
}
