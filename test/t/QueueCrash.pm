# Copyright: the queue extension's authors.
#
# QueueCrash: what the crash tests (010, 060, 080, 100) share.  kill -9 of a
# postmaster leaves it to be reaped, and its backends live on until they
# notice it is gone, holding the old shared memory: a new postmaster on the
# same data directory refuses to start until all of them are gone.
package QueueCrash;

use strict;
use warnings;

use Cwd qw(abs_path);
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

# The pid of the node's running postmaster, from postmaster.pid.
sub postmaster_pid
{
	my ($node) = @_;
	my ($pid) = slurp_file($node->data_dir . '/postmaster.pid') =~ /^(\d+)/;
	return $pid;
}

# Kills the node's postmaster with SIGKILL; returns its pid, for
# wait_for_orphans.
sub kill9
{
	my ($node) = @_;
	my $pid = postmaster_pid($node);
	$node->kill9;
	return $pid;
}

# Waits for the killed postmaster to be gone, and for every process whose
# working directory is the data directory (its orphaned backends).
sub wait_for_orphans
{
	my ($node, $pm) = @_;
	my $dir = abs_path($node->data_dir);
	my $tries = 10 * $PostgreSQL::Test::Utils::timeout_default;
	while ($tries-- > 0)
	{
		my @left = grep {
			my $cwd = readlink("$_/cwd");
			defined $cwd && $cwd eq $dir
		} glob('/proc/[0-9]*');
		return if !@left && !kill(0, $pm);
		usleep(100_000);
	}
	diag 'processes of the killed postmaster are still running';
	return;
}

1;
